"""The LR range test: the suggestion on a problem with a known stable range, state restored."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.lrfind import RULES, find_lr, plot_lr_find, suggest_lr


def _linear_problem(n: int = 2048):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g) * torch.tensor([3.0, 1.0, 1.0, 0.5])
    y = x @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    # mse = mean((xw − y)²) has Hessian 2·XᵀX/n; gradient descent diverges for lr > 2/L.
    curvature = 2 * torch.linalg.eigvalsh(x.T @ x / n).max().item()
    return x, y, 2 / curvature


def test_suggestion_sits_below_the_divergence_threshold_of_a_quadratic():
    x, y, lr_max_stable = _linear_problem()
    model = nn.Linear(4, 1, bias=False)
    result = find_lr(model, x, y, loss=nn.functional.mse_loss,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                     start_lr=1e-5, end_lr=10.0, steps=200, batch_size=64)
    assert result.diverged, "the test must stop once the loss blows up past 2/L"
    assert result.lrs[-1] > lr_max_stable  # it went past the stable range …
    assert result.lrs[-1] < 10 * lr_max_stable  # … and stopped soon after
    assert lr_max_stable / 30 < result.suggestion < lr_max_stable
    assert result.suggestion == pytest.approx(result.min_loss_lr / 10)
    assert result.rule == RULES["min/10"]
    # the lr grows exponentially: constant ratio between consecutive steps
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
    assert ratios[0] == pytest.approx((10.0 / 1e-5) ** (1 / 199), rel=1e-9)


def test_smoothed_loss_is_the_bias_corrected_moving_average():
    x, y, _ = _linear_problem(512)
    model = nn.Linear(4, 1)
    r = find_lr(model, x, y, loss=nn.functional.mse_loss, optimizer=torch.optim.SGD(
        model.parameters(), lr=0.1), start_lr=1e-6, end_lr=1e-3, steps=30, smooth=0.9)
    avg = 0.0
    for i, (raw, s) in enumerate(zip(r.raw_losses, r.losses, strict=True)):
        avg = 0.9 * avg + 0.1 * raw
        assert s == pytest.approx(avg / (1 - 0.9 ** (i + 1)), rel=1e-6)
    assert len(r.lrs) == 30 and not r.diverged


def test_model_optimizer_and_rng_state_are_restored():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(16, 3))
    x, y = torch.randn(300, 6), torch.randint(0, 3, (300,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(3):  # give the optimizer moments so that there is state to restore
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:50]), y[:50]).backward()
        opt.step()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                  for i, s in opt.state_dict()["state"].items()}
    rng_before = torch.get_rng_state()

    r = find_lr(model, x, y, optimizer=opt, loss=nn.functional.cross_entropy, steps=60,
                start_lr=1e-4, end_lr=100.0)

    assert len(r.lrs) > 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BN running statistics
    state = opt.state_dict()
    assert all(g["lr"] == 3e-3 for g in state["param_groups"])
    for i, s in state["state"].items():
        for k, v in s.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt_before[i][k])), (i, k)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert not model.training  # its mode too


def test_every_registered_optimizer_runs_and_is_restored():
    optim = pytest.importorskip("trainwell.optim")
    x, y, _ = _linear_problem(256)
    for name in optim.OPTIMIZERS.names():
        model = nn.Linear(4, 1)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        r = find_lr(model, x, y, optimizer=name, loss=nn.functional.mse_loss, steps=40,
                    start_lr=1e-5, end_lr=10.0, batch_size=32)
        assert r.suggestion > 0 and math.isfinite(r.suggestion), name
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), name


def test_suggestion_rules_on_a_known_curve():
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]
    # loss flat, then falls fastest around index 50, lowest at index 70, then climbs
    losses = [2.0 - math.tanh((i - 50) / 8) - (0.02 * (i - 70) ** 2 / 100 if i > 70 else 0)
              for i in range(100)]
    losses = [v + (0.05 * (i - 70) ** 2 if i > 70 else 0) for i, v in enumerate(losses)]
    i_min = min(range(100), key=losses.__getitem__)
    suggestion, min_lr, steepest, note = suggest_lr(lrs, losses, "min/10")
    assert min_lr == lrs[i_min] and suggestion == pytest.approx(lrs[i_min] / 10)
    assert note == ""
    s2, _, steep2, _ = suggest_lr(lrs, losses, "steepest")
    assert s2 == steep2 and lrs[45] < steep2 < lrs[56]
    with pytest.raises(ConfigError, match="steepest"):
        suggest_lr(lrs, losses, "valley")


def test_a_loss_that_never_falls_says_so():
    lrs = [10 ** (-3 + i / 10) for i in range(30)]
    _, _, _, note = suggest_lr(lrs, [1.0 + i for i in range(30)])
    assert "never went down" in note


@pytest.mark.parametrize("kwargs, field", [
    (dict(start_lr=0.0), "lr_find.start_lr"),
    (dict(start_lr=1e-3, end_lr=1e-4), "lr_find.end_lr"),
    (dict(steps=1), "lr_find.steps"),
    (dict(diverge=0.5), "lr_find.diverge"),
    (dict(smooth=1.0), "lr_find.smooth"),
])
def test_bad_settings_are_refused_before_any_step(kwargs, field):
    model = nn.Linear(2, 1)
    before = model.weight.clone()
    with pytest.raises(ConfigError) as err:
        find_lr(model, torch.randn(8, 2), torch.randn(8, 1), loss=nn.functional.mse_loss,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)
    assert err.value.field == field
    assert torch.equal(model.weight, before)


def test_plot_marks_the_suggestion(tmp_path):
    x, y, _ = _linear_problem(256)
    model = nn.Linear(4, 1)
    r = find_lr(model, x, y, loss=nn.functional.mse_loss, steps=60, start_lr=1e-5,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    path = plot_lr_find(r, tmp_path / "plots" / "lr_find.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert "suggested max learning rate" in r.sentence()


def _tiny_splits():
    from trainwell.data.splits import Splits

    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=g)
    x = torch.randn(400, 6, generator=g)
    xv = torch.randn(50, 6, generator=g)
    return Splits(x, (x @ w).argmax(1), xv, (xv @ w).argmax(1), xv, (xv @ w).argmax(1),
                  class_names=None, input_shape=(6,), n_outputs=3, task="multiclass",
                  name="synthetic")


def _tiny_recipe():
    from trainwell.recipe import Recipe, apply_overrides

    return apply_overrides(Recipe(name="tiny"), [
        "model.hidden=[16]", "optimizer.name=nesterov", "train.batch_size=32",
        "train.device=cpu", "schedule.name=onecycle"])


def test_recipe_finder_uses_the_recipe_model_optimizer_and_batch_size():
    from trainwell.compose import build_model_from_recipe
    from trainwell.lrfind import lr_find_recipe

    recipe, splits = _tiny_recipe(), _tiny_splits()
    r, same = lr_find_recipe(recipe, splits=splits, steps=80, start_lr=1e-5)
    assert same is splits and r.settings["batch_size"] == 32
    # the same model and data by hand give the same curve
    model = build_model_from_recipe(recipe, splits)
    by_hand = find_lr(model, splits.x_train, splits.y_train, optimizer="nesterov",
                      optimizer_params=dict(momentum=recipe.optimizer.momentum),
                      loss=nn.functional.cross_entropy, steps=80, start_lr=1e-5,
                      batch_size=32, seed=recipe.train.seed)
    assert r.lrs == by_hand.lrs
    assert r.raw_losses == pytest.approx(by_hand.raw_losses, rel=1e-5)


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_auto_max_lr_becomes_the_suggestion(tmp_path):
    from trainwell.lrfind import record_lr_find, resolve_auto_max_lr, wants_auto_max_lr

    recipe, splits = _tiny_recipe(), _tiny_splits()
    same, none = resolve_auto_max_lr(recipe, splits)
    assert same is recipe and none is None  # nothing asked: nothing run
    # a recipe saying max_lr = "auto" (built without validation, as the TOML would give it)
    auto = recipe.model_copy(update={"schedule": recipe.schedule.model_copy(
        update={"max_lr": "auto"})})
    assert wants_auto_max_lr(auto)
    resolved, found = resolve_auto_max_lr(auto, splits, steps=60)
    assert found is not None and resolved.schedule.max_lr == pytest.approx(found.suggestion)
    assert not wants_auto_max_lr(resolved)
    assert resolved.model == recipe.model and resolved.optimizer == recipe.optimizer

    (tmp_path / "summary.json").write_text("{}")
    record_lr_find(tmp_path, found)
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    (section,) = summary["sections"]
    assert section["title"] == "LR finder" and f"{found.suggestion:.4g}" in section["table"][1]
    assert (tmp_path / "plots" / "lr_find.png").is_file()


@pytest.mark.realdata
@pytest.mark.skipif(not (Path(os.environ.get("TRAINWELL_DATA", "/nonexistent"))
                         / "fashion-mnist").is_dir(), reason="needs $TRAINWELL_DATA/fashion-mnist")
def test_fashion_mnist_finder_suggests_a_usual_rate_for_nesterov():
    from trainwell.lrfind import lr_find_recipe
    from trainwell.recipe import apply_overrides, resolve

    recipe = apply_overrides(resolve("onecycle"), ["data.train_limit=4000", "train.device=cpu"])
    r, _ = lr_find_recipe(recipe, steps=120, start_lr=1e-5)
    # SGD with Nesterov momentum on a standardized MLP trains well around 1e-3 … 1e-1
    assert r.diverged and 1e-3 <= r.suggestion <= 0.2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine "
                    "without CUDA")
def test_recipe_finder_on_an_absent_cuda_device_is_a_config_error():
    from trainwell.errors import ConfigError
    from trainwell.lrfind import lr_find_recipe
    from trainwell.recipe import apply_overrides

    recipe = apply_overrides(_tiny_recipe(), ["train.device=cuda"])
    with pytest.raises(ConfigError) as err:
        lr_find_recipe(recipe, splits=_tiny_splits(), steps=10)
    assert err.value.field == "train.device" and "not available" in str(err.value)
