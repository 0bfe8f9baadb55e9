"""The numbers of a fixed set of short runs stay what they were (golden histories).

Each scenario is a tiny, seeded run on synthetic data — several optimizers and schedules
(1cycle with momentum cycling, performance), batch norm, dropout, max-norm, value / per-tensor /
global-norm clipping, l1/l2 penalties, compiled and eager, two-phase fine-tuning, greedy
pretraining and the LR finder. ``golden.json`` holds what the code produced when the fixtures
were recorded: each epoch's logged values (but ``time``) and the final weights (a sha256 of
their bytes and each tensor's sum). A change to the training step that changes any number
fails here.

How exact: on the platform that recorded the fixtures (same torch version and CPU kernels,
see ``platform`` in the file) eager runs must match bit for bit. Compiled runs, and any run on
another platform, are compared to a relative tolerance of 1e-4: the compiler and other CPUs may
fuse or vectorize the float32 sums differently, which changes the last bits and nothing else.
One recorded number changed on purpose: greedy pretraining's per-epoch reconstruction MSE was a
float32 running sum and is now the Trainer's float64 epoch mean (pretraining runs on the
Trainer); it is compared to 1e-6 (the weights and the final MSE stay bit for bit).

Re-record (only when a change of the numbers is intended and understood)::

    PYTHONPATH=src python tests/golden/test_golden_runs.py --write
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

GOLDEN = Path(__file__).with_name("golden.json")
RTOL = 1e-4


def _platform() -> str:
    return (f"torch {torch.__version__}, {platform.machine()}, "
            f"{torch.backends.cpu.get_cpu_capability()}")


def _data(n=96, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 2
    y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    return x[:64], y[:64], x[64:], y[64:]


def _net(seed=0, **kw):
    from trainwell.nn import build_model

    torch.manual_seed(seed)
    # The plain normal the fixtures were recorded with (the default became the truncated
    # normal later): these runs pin the training step, not the init default.
    spec = dict(input_shape=6, n_outputs=3, hidden=[12, 8], init_distribution="normal")
    spec.update(kw)
    return build_model(**spec)


def _weights(model: nn.Module) -> dict:
    state = model.state_dict()
    digest = hashlib.sha256()
    sums = {}
    for k in sorted(state):
        v = state[k].detach().cpu().contiguous()
        digest.update(k.encode())
        digest.update(v.numpy().tobytes())
        if v.is_floating_point():
            sums[k] = float(v.double().sum())
    return {"sha256": digest.hexdigest(), "sums": sums}


def _rows(history) -> list[dict]:
    rows = getattr(history, "epochs", history)
    return [{k: v for k, v in dict(r).items() if k != "time"} for r in rows]


# Trainer runs: (optimizer, optimizer_params, schedule, schedule_params, model kwargs, trainer
# kwargs, epochs).
TRAINER_RUNS = {
    "sgd_constant": ("sgd", {}, "constant", {}, {}, {}, 3),
    "momentum_exponential_clip_value_l2": (
        "momentum", {"momentum": 0.9}, "exponential", {"decay_steps": 8}, {},
        {"clip_value": 0.05, "l2": 1e-3}, 3),
    "nesterov_power_clip_norm_l1": (
        "nesterov", {"momentum": 0.9}, "power", {"decay_steps": 4, "power": 1.0}, {},
        {"clip_norm": 0.5, "l1": 1e-3}, 3),
    "adam_onecycle_global_norm_max_norm": (
        "adam", {}, "onecycle", {"max_lr": 0.02}, {},
        {"clip_global_norm": 1.0, "max_norm": 1.0}, 3),
    "momentum_onecycle_bn_before": (
        "momentum", {"momentum": 0.9}, "onecycle", {"max_lr": 0.1},
        {"batch_norm": "before"}, {}, 3),
    "rmsprop_performance_dropout": (
        "rmsprop", {"rho": 0.9}, "performance", {"factor": 0.5, "patience": 1},
        {"dropout": 0.2}, {}, 4),
    "adamw_piecewise_bn_after_dropout_l1_l2": (
        "adamw", {"weight_decay": 1e-2}, "piecewise", {"boundaries": [1, 2]},
        {"batch_norm": "after", "dropout": 0.1}, {"l1": 1e-4, "l2": 1e-3}, 3),
    "nadam_constant_selu": ("nadam", {}, "constant", {}, {"activation": "selu"}, {}, 2),
    "adagrad_constant": ("adagrad", {}, "constant", {}, {}, {}, 2),
    "adamax_constant_max_norm": ("adamax", {}, "constant", {}, {}, {"max_norm": 0.8}, 2),
    "sgd_nan_guard_early_stopping": ("sgd", {}, "constant", {}, {}, {"_callbacks": True}, 4),
    "compiled_momentum_onecycle_bn_clip_l2_max_norm": (
        "momentum", {"momentum": 0.9}, "onecycle", {"max_lr": 0.1}, {"batch_norm": "before"},
        {"compile": True, "clip_norm": 0.5, "l2": 1e-3, "max_norm": 1.0}, 2),
}

COMPILED = {k for k, v in TRAINER_RUNS.items() if v[5].get("compile")}


def run_trainer(name: str) -> dict:
    from trainwell.train import EarlyStopping, NanGuard, Trainer

    opt, opt_params, sched, sched_params, model_kw, kwargs, epochs = TRAINER_RUNS[name]
    kwargs = dict(kwargs)
    callbacks = []
    if kwargs.pop("_callbacks", False):
        callbacks = [NanGuard(check_every=2), EarlyStopping(patience=1)]
    x, y, xv, yv = _data()
    model = _net(**model_kw)
    lr = 0.05 if opt in ("sgd", "momentum", "nesterov", "adagrad") else 0.01
    t = Trainer(model, optimizer=opt, lr=lr, optimizer_params=opt_params, schedule=sched,
                schedule_params=sched_params, seed=3, device="cpu", callbacks=callbacks,
                **kwargs)
    h = t.fit(x, y, epochs=epochs, batch_size=16, validation_data=(xv, yv))
    return {"history": _rows(h), "weights": _weights(model), "step": t.step,
            "status": t.status}


def run_fine_tune(schedule: str) -> dict:
    from trainwell.train import EarlyStopping, Trainer
    from trainwell.transfer import fine_tune, reuse_layers

    x, y, xv, yv = _data(seed=1)
    source = _net(seed=2, batch_norm="before")
    Trainer(source, optimizer="sgd", lr=0.05, seed=0, device="cpu").fit(
        x, y, epochs=2, batch_size=16)
    torch.manual_seed(5)
    model = reuse_layers(source, n_outputs=1, task="binary")
    yb = (y == 0).float().unsqueeze(1)
    ybv = (yv == 0).float().unsqueeze(1)
    params = {"exponential": {"decay_steps": 6}}.get(schedule, {})
    h = fine_tune(model, x, yb, frozen_epochs=2, epochs=5, lr=0.05, lr_factor=0.2,
                  validation_data=(xv, ybv), optimizer="momentum",
                  optimizer_params={"momentum": 0.9}, batch_size=16, seed=4, device="cpu",
                  schedule=schedule, schedule_params=params, l2=1e-3, clip_norm=1.0,
                  unfrozen_callbacks=[EarlyStopping(patience=2)])
    return {"history": _rows(h), "weights": _weights(model), "source": _weights(source)}


def run_pretrain() -> dict:
    from trainwell.pretrain import greedy_pretrain

    x, _, _, _ = _data(seed=2)
    torch.manual_seed(0)
    res = greedy_pretrain({"input_shape": 6, "n_outputs": 3, "hidden": [8, 5],
                           "init_distribution": "normal"}, x,
                          epochs_per_layer=3, batch_size=16, lr=1e-2, seed=1, device="cpu")
    return {"layers": [{"name": r.name, "initial_mse": r.initial_mse,
                        "epoch_mse": r.epoch_mse, "final_mse": r.final_mse}
                       for r in res.layers],
            "weights": _weights(res.model)}


def run_lr_find(optimizer: str, clip_global_norm: float) -> dict:
    from trainwell.lrfind import find_lr

    x, y, _, _ = _data(seed=3)
    model = _net(seed=4)
    before = _weights(model)
    r = find_lr(model, x, y, optimizer=optimizer, optimizer_params={"momentum": 0.9},
                start_lr=1e-4, end_lr=10.0, steps=40, batch_size=16,
                clip_global_norm=clip_global_norm)
    return {"lrs": r.lrs, "raw_losses": r.raw_losses, "losses": r.losses,
            "suggestion": r.suggestion, "min_loss_lr": r.min_loss_lr,
            "steepest_lr": r.steepest_lr, "diverged": r.diverged,
            "restored": _weights(model) == before}


SCENARIOS = {
    **{f"trainer/{k}": (lambda k=k: run_trainer(k)) for k in TRAINER_RUNS},
    "fine_tune/constant": lambda: run_fine_tune("constant"),
    "fine_tune/exponential": lambda: run_fine_tune("exponential"),
    "pretrain/greedy": run_pretrain,
    "lr_find/sgd": lambda: run_lr_find("sgd", 0.0),
    "lr_find/momentum_global_norm": lambda: run_lr_find("momentum", 0.5),
}


def _close(a, b, rtol, where=""):
    """Equal structure; floats equal (rtol == 0) or within rtol; other values equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for k in a:
            _close(a[k], b[k], rtol, f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _close(u, v, rtol, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if math.isnan(a):
            assert math.isnan(b), where
        elif rtol == 0:
            assert a == b, f"{where}: {a!r} != {b!r}"
        else:
            assert math.isclose(a, b, rel_tol=rtol, abs_tol=1e-7), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _strip_sha(result: dict) -> dict:
    out = {}
    for k, v in result.items():
        if isinstance(v, dict) and "sha256" in v:
            v = {"sums": v["sums"]}
        out[k] = v
    return out


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", [n for n in SCENARIOS
                                  if n.removeprefix("trainer/") not in COMPILED])
def test_eager_runs_match_the_recorded_numbers(golden, name):
    exact = golden["platform"] == _platform()
    got = json.loads(json.dumps(SCENARIOS[name]()))   # the same float round trip as the file
    want = copy.deepcopy(golden["runs"][name])
    if name == "pretrain/greedy":   # per-epoch MSE: now the Trainer's float64 epoch mean
        for w, g in zip(want["layers"], got["layers"], strict=True):
            _close(w.pop("epoch_mse"), g.pop("epoch_mse"), 1e-6, name)
    if exact:
        _close(want, got, 0.0, name)
    else:
        _close(_strip_sha(want), _strip_sha(got), RTOL, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(f"trainer/{k}" for k in COMPILED))
def test_compiled_runs_match_the_recorded_numbers(golden, name):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = json.loads(json.dumps(SCENARIOS[name]()))
    _close(_strip_sha(golden["runs"][name]), _strip_sha(got), RTOL, name)


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: PYTHONPATH=src python tests/golden/test_golden_runs.py --write")
    torch.set_num_threads(1)
    runs = {name: fn() for name, fn in SCENARIOS.items()}
    GOLDEN.write_text(json.dumps({"platform": _platform(), "runs": runs}, indent=1) + "\n")
    print(f"wrote {len(runs)} runs to {GOLDEN}")
