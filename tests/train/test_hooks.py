"""The step applies clipping, penalties, max-norm and schedules where the contract says."""

import math

import pytest
import torch
from torch import nn

from trainwell.train import Callback, Trainer


class GradSpy(Callback):
    """Records gradient norms after backward (before clip) and after the clip (at step)."""

    def __init__(self):
        self.raw, self.clipped = [], []

    def on_after_backward(self, t, step):
        self.raw.append([p.grad.norm().item() for p in t.model.parameters()])

        def hook(opt, args, kwargs):
            self.clipped.append([p.grad.clone() for p in t.model.parameters()])

        if not hasattr(self, "_h"):
            self._h = t.optimizer.register_step_pre_hook(hook)


def test_clip_norm_is_applied_before_the_optimizer_step(blobs, mlp):
    x, y, _, _ = blobs
    spy = GradSpy()
    Trainer(mlp(), lr=0.01, clip_norm=0.01, callbacks=[spy]).fit(x * 10, y, epochs=1)
    assert max(max(r) for r in spy.raw) > 0.01
    for grads in spy.clipped:
        for g in grads:
            assert g.norm().item() <= 0.01 + 1e-6


def test_clip_value_and_global_norm(blobs, mlp):
    x, y, _, _ = blobs
    spy = GradSpy()
    Trainer(mlp(), clip_value=0.001, callbacks=[spy]).fit(x, y, epochs=1)
    assert all(g.abs().max().item() <= 0.001 + 1e-9 for gs in spy.clipped for g in gs)
    spy = GradSpy()
    Trainer(mlp(), clip_global_norm=0.05, callbacks=[spy]).fit(x * 10, y, epochs=1)
    for gs in spy.clipped:
        assert math.sqrt(sum(g.norm().item() ** 2 for g in gs)) <= 0.05 + 1e-5


def test_max_norm_holds_after_every_step(blobs, mlp):
    x, y, _, _ = blobs

    class Check(Callback):
        worst = 0.0

        def on_batch_end(self, t, step):
            w = t.model[0].weight
            Check.worst = max(Check.worst, w.norm(dim=1).max().item())

    model = mlp()
    with torch.no_grad():
        model[0].weight.mul_(10)
    Trainer(model, optimizer="adam", lr=0.05, max_norm=0.5, callbacks=[Check()]).fit(
        x, y, epochs=2)
    assert Check.worst <= 0.5 + 1e-5


def test_l2_penalty_adds_the_kernel_term_to_the_gradient(blobs, mlp):
    # With l2 > 0 the gradient of each kernel gains 2·l2·W (biases unchanged).
    x, y, _, _ = blobs
    grads = {}

    class Grab(Callback):
        def __init__(self, key):
            self.key = key

        def on_after_backward(self, t, step):
            if step == 0:
                grads[self.key] = [p.grad.clone() for p in t.model.parameters()]
                grads[self.key + "_w"] = [p.detach().clone() for p in t.model.parameters()]

    l2 = 0.3
    Trainer(mlp(), callbacks=[Grab("plain")]).fit(x, y, epochs=1, shuffle=False)
    t = Trainer(mlp(), l2=l2, callbacks=[Grab("l2")])
    h = t.fit(x, y, epochs=1, shuffle=False)
    w = grads["l2_w"]
    for i, (g0, g1) in enumerate(zip(grads["plain"], grads["l2"], strict=True)):
        extra = 2 * l2 * w[i] if w[i].dim() == 2 else torch.zeros_like(w[i])
        assert torch.allclose(g1, g0 + extra, atol=1e-6)
    assert h["penalty"][0] > 0


def test_l1_penalty_gradient_is_sign_of_weights(blobs, mlp):
    x, y, _, _ = blobs
    grads = []

    class Grab(Callback):
        def on_after_backward(self, t, step):
            if step == 0:
                grads.append([(p.grad.clone(), p.detach().clone()) for p in t.model.parameters()])

    Trainer(mlp(), callbacks=[Grab()]).fit(x, y, epochs=1, shuffle=False)
    Trainer(mlp(), l1=0.5, callbacks=[Grab()]).fit(x, y, epochs=1, shuffle=False)
    for (g0, w), (g1, _) in zip(grads[0], grads[1], strict=True):
        extra = 0.5 * torch.sign(w) if w.dim() == 2 else torch.zeros_like(w)
        assert torch.allclose(g1, g0 + extra, atol=1e-6)


def test_lr_in_history_follows_the_exponential_schedule_formula(blobs, mlp):
    x, y, _, _ = blobs
    seen = []

    class Lr(Callback):
        def on_batch_start(self, t, step):
            seen.append((step, t.optimizer.param_groups[0]["lr"]))

    t = Trainer(mlp(), lr=0.1, schedule="exponential", schedule_params={"decay_steps": 20},
                callbacks=[Lr()])
    h = t.fit(x, y, epochs=3, batch_size=30)  # 6 steps per epoch
    for step, lr in seen:  # η_t = η0 · 0.1^(t/s), set before step t
        assert lr == pytest.approx(0.1 * 0.1 ** (step / 20))
    for e in h:
        assert e["lr"] == pytest.approx(0.1 * 0.1 ** ((e["steps"] - 1) / 20))


def test_performance_schedule_gets_the_validation_loss_each_epoch(blobs, mlp):
    x, y, xv, yv = blobs
    yv = torch.randint(0, 3, yv.shape, generator=torch.Generator().manual_seed(0))  # noise
    t = Trainer(mlp(), optimizer="adam", lr=0.05, schedule="performance",
                schedule_params={"patience": 1, "factor": 0.5})
    h = t.fit(x, y, epochs=8, validation_data=(xv, yv))
    lrs = h["lr"]
    assert lrs[0] == 0.05 and min(lrs) < 0.05  # it reduced on a validation plateau
    assert all(b in (a, a * 0.5) for a, b in zip(lrs, lrs[1:], strict=False))


def test_onecycle_cycles_the_momentum(blobs, mlp):
    x, y, _, _ = blobs
    moms = []

    class M(Callback):
        def on_batch_start(self, t, step):
            moms.append(t.optimizer.param_groups[0]["momentum"])

    Trainer(mlp(), optimizer="momentum", lr=0.05, schedule="onecycle", callbacks=[M()]).fit(
        x, y, epochs=4)
    assert max(moms) == pytest.approx(0.95, abs=0.01) and min(moms) < 0.9


def test_a_user_optimizer_and_any_module_work(blobs):
    x, y, _, _ = blobs

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 8)
            self.b = nn.Linear(8, 3)

        def forward(self, z):
            return self.b(torch.relu(self.a(z)))

    net = Net()
    opt = torch.optim.RMSprop([{"params": net.a.parameters(), "lr": 0.001},
                               {"params": net.b.parameters()}], lr=0.004)
    t = Trainer(net, optimizer=opt)
    h = t.fit(x, y, epochs=3)
    assert t.optimizer is opt and h["loss"][-1] < h["loss"][0]
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.004]  # the user's lrs are kept
    assert h["lr"] == [0.001] * 3
