"""The LR finder is a callback on the Trainer: it tests the run's real step."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainwell.train import Trainer
from trainwell.train.lr_finder import LRFinder, find_lr


def _problem(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g) * 3
    y = (x @ torch.randn(5, 3, generator=g)).argmax(1)
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def _oracle(model, x, y, *, steps, bs, start_lr, end_lr, seed, clip_value=0.0, l1=0.0,
            l2=0.0, max_norm=0.0):
    """The range test written out by hand: θ ← θ − η_t·clip(∇(CE + l1·Σ|w| + l2·Σw²))."""
    gen = torch.Generator().manual_seed(seed)
    per_pass = len(x) // bs
    losses = []
    for t in range(steps):
        if t % per_pass == 0:
            perm = torch.randperm(len(x), generator=gen)
        idx = perm[(t % per_pass) * bs:(t % per_pass + 1) * bs]
        lr = start_lr * (end_lr / start_lr) ** (t / (steps - 1))
        model.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        kernels = [m.weight for m in model if isinstance(m, nn.Linear)]
        (loss + l1 * sum(w.abs().sum() for w in kernels)
         + l2 * sum((w * w).sum() for w in kernels)).backward()
        with torch.no_grad():
            for p in model.parameters():
                g = p.grad.clamp(-clip_value, clip_value) if clip_value else p.grad
                p -= lr * g
            if max_norm:
                w = model[0].weight   # the hidden layer (not the output layer)
                w *= (max_norm / w.norm(dim=1, keepdim=True).clamp_min(max_norm))
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("kw", [dict(clip_value=0.05), dict(l1=1e-2, l2=1e-2),
                                dict(clip_value=0.05, l2=1e-2, max_norm=0.5)])
def test_finder_steps_with_the_recipes_clipping_penalties_and_max_norm(kw):
    x, y = _problem()
    settings = dict(steps=20, start_lr=1e-3, end_lr=1.0, seed=3)
    r = find_lr(_net(), x, y, optimizer="sgd", batch_size=16, diverge=1e9, smooth=0.0,
                **settings, **kw)
    want = _oracle(_net(), x, y, bs=16, **settings, **kw)
    plain = _oracle(_net(), x, y, bs=16, **settings)
    assert r.raw_losses == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert r.raw_losses != pytest.approx(plain, rel=1e-3)   # the settings changed the curve


def test_recipe_finder_applies_the_recipe_clipping_and_penalties():
    from trainwell.config import Recipe, apply_overrides
    from trainwell.data.splits import Splits
    from trainwell.workflows.lrfind import lr_find_recipe

    x, y = _problem(200)
    splits = Splits(x, y, x[:20], y[:20], x[:20], y[:20], class_names=None, input_shape=(5,),
                    n_outputs=3, task="multiclass", name="synthetic")
    base = apply_overrides(Recipe(name="tiny"), [
        "model.hidden=[8]", "optimizer.name=sgd", "train.batch_size=16", "train.device=cpu"])
    plain, _ = lr_find_recipe(base, splits=splits, steps=30, start_lr=1e-3)
    for override in ("optimizer.clip_value=0.01", "optimizer.clip_norm=0.01",
                     "regularization.l2=0.5", "regularization.l1=0.5"):
        other, _ = lr_find_recipe(apply_overrides(base, [override]), splits=splits, steps=30,
                                  start_lr=1e-3)
        assert other.lrs[:20] == plain.lrs[:20]
        assert other.raw_losses[5:20] != pytest.approx(plain.raw_losses[5:20], rel=1e-4), \
            override


def test_the_finder_is_a_callback_on_any_trainer_and_restores_the_model():
    x, y = _problem()
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finder = LRFinder(start_lr=1e-4, end_lr=10.0, steps=30)
    t = Trainer(model, optimizer="momentum", lr=0.1, clip_global_norm=1.0, callbacks=[finder],
                device="cpu")
    t.fit(x, y, epochs=100, batch_size=16)
    assert len(finder.lrs) <= t.step <= 30        # stopped at `steps`, or when it blew up
    assert finder.lrs[1] / finder.lrs[0] == pytest.approx((1e5) ** (1 / 29))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    r = finder.result("steepest")
    assert r.rule_name == "steepest" and r.suggestion > 0
