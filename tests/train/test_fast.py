"""The fast (whole-step compiled) training step against the eager step it must equal."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainwell.train.fast import StepOutput, make_train_step, needs_eager_step


def _net(seed: int = 0, bn: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(6, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.SELU(), nn.Linear(16, 8), nn.SELU(), nn.Linear(8, 3)]
    return nn.Sequential(*layers)


def _batches(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(12, 6, generator=g), torch.randint(0, 3, (12,), generator=g))
            for _ in range(n)]


def _run(step, opt, batches, lrs):
    out = []
    for (xb, yb), lr in zip(batches, lrs, strict=True):
        for g in opt.param_groups:  # a schedule changing the lr every step
            g["lr"] = lr
        out.append(step(xb, yb))
    return out


def _oracle_sgd(model, batches, lrs, clip_norm, l2):
    """θ ← θ − η ∇(CE + l2·Σw²) with per-tensor norm clipping, written out by hand."""
    for (xb, yb), lr in zip(batches, lrs, strict=True):
        model.zero_grad()
        kernels = [m.weight for m in model if isinstance(m, nn.Linear)]
        loss = F.cross_entropy(model(xb), yb) + l2 * sum((w * w).sum() for w in kernels)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                g = p.grad * (clip_norm / max(float(p.grad.norm()), clip_norm))
                p -= lr * g


@pytest.fixture
def fresh_dynamo():
    """Compiled graphs and their guards must not leak from one test into another."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("opt_name", ["nadam"])  # SGD: the Trainer test below (one compile each)
def test_compiled_step_equals_eager_step(opt_name, fresh_dynamo):
    eager_model, fast_model = _net(), _net()
    make = {"sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.05, foreach=True),
            "nadam": lambda m: torch.optim.NAdam(m.parameters(), lr=0.01, foreach=True)}[opt_name]
    eager_opt, fast_opt = make(eager_model), make(fast_model)
    kw = {"clip_norm": 0.5, "l2": 1e-3, "max_norm": 2.0}
    eager = make_train_step(eager_model, F.cross_entropy, eager_opt, **kw)
    fast = make_train_step(fast_model, F.cross_entropy, fast_opt, compile=True, **kw)
    batches, lrs = _batches(6), [0.05, 0.04, 0.03, 0.02, 0.01, 0.005]
    if opt_name == "nadam":
        lrs = [lr / 5 for lr in lrs]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fallback to eager
        ref, got = _run(eager, eager_opt, batches, lrs), _run(fast, fast_opt, batches, lrs)
    assert fast.compiled and fast.compiled_steps == 5  # the first step creates optimizer state
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(b.loss, a.loss, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b.logits, a.logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b.penalty, a.penalty, rtol=1e-5, atol=1e-7)
    for pe, pf in zip(eager_model.parameters(), fast_model.parameters(), strict=True):
        torch.testing.assert_close(pf, pe, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(pf.grad, pe.grad, rtol=1e-3, atol=1e-5)  # left for probes
    # the group's lr is the schedule's float again, and the state matches the eager run
    assert fast_opt.param_groups[0]["lr"] == lrs[-1]
    if opt_name == "nadam":
        for pe, pf in zip(eager_model.parameters(), fast_model.parameters(), strict=True):
            torch.testing.assert_close(fast_opt.state[pf]["exp_avg"],
                                       eager_opt.state[pe]["exp_avg"], rtol=1e-4, atol=1e-7)


def test_eager_step_follows_the_update_rule():
    """Oracle: SGD with per-tensor clipping and an ℓ2 kernel penalty written out by hand."""
    model, ref = _net(), _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = make_train_step(model, F.cross_entropy, opt, clip_norm=0.3, l2=0.01)
    batches, lrs = _batches(3), [0.1, 0.05, 0.02]
    outs = _run(step, opt, batches, lrs)
    _oracle_sgd(ref, batches, lrs, clip_norm=0.3, l2=0.01)
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert isinstance(outs[0], StepOutput) and not outs[0].loss.requires_grad
    kernels = [m.weight.detach() for m in _net() if isinstance(m, nn.Linear)]
    assert float(outs[0].penalty) == pytest.approx(0.01 * float(sum((w * w).sum()
                                                                   for w in kernels)), rel=1e-5)


def test_fallback_when_compile_is_unavailable(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    model, ref = _net(), _net()
    opt, ref_opt = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, ref))
    with pytest.warns(RuntimeWarning, match="eager mode") as rec:
        step = make_train_step(model, F.cross_entropy, opt, compile=True)
    assert len(rec) == 1 and not step.compiled
    ref_step = make_train_step(ref, F.cross_entropy, ref_opt)
    for xb, yb in _batches(3):
        step(xb, yb), ref_step(xb, yb)
    assert step.eager_steps == 3
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_fallback_when_the_compiled_graph_fails(monkeypatch):
    """A failure at the first compiled call (tracing, C++ compiler) warns once, then eager."""
    model, ref = _net(), _net()
    opt, ref_opt = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, ref))
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: _raiser)
    step = make_train_step(model, F.cross_entropy, opt, compile=True)
    ref_step = make_train_step(ref, F.cross_entropy, ref_opt)
    with pytest.warns(RuntimeWarning, match="eager mode") as rec:
        for xb, yb in _batches(4):
            step(xb, yb), ref_step(xb, yb)
    assert len(rec) == 1 and not step.compiled and step.eager_steps == 4
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert opt.param_groups[0]["lr"] == 0.1 and not isinstance(opt.param_groups[0]["lr"],
                                                                torch.Tensor)


def _raiser(*args, **kwargs):
    raise RuntimeError("C++ compiler not found")


def test_needs_eager_step_reads_what_each_callback_declares():
    """No class-name checks: a callback declares the steps it must see op by op."""
    from trainwell.diagnose import GradientProbe
    from trainwell.train import Callback, NanGuard

    class NamedLikeAProbe(Callback):  # a name alone decides nothing
        every = 5

        def on_after_backward(self, t, step): ...

    NamedLikeAProbe.__name__ = "GradientProbe"

    class Always(Callback):
        needs_eager_step = True

    class Never(Callback):
        needs_eager_step = False

        def on_after_backward(self, t, step): ...

    class Asks:  # the older method name still works
        def needs_backward_hook(self, step):
            return step == 3

    assert [s for s in range(12) if needs_eager_step([GradientProbe(every=5)], s)] == [0, 5, 10]
    assert [s for s in range(25) if needs_eager_step([NanGuard(check_every=10)], s)] == [9, 19]
    assert [s for s in range(6) if needs_eager_step([Asks()], s)] == [3]
    assert needs_eager_step([NamedLikeAProbe()], 1) and needs_eager_step([Always()], 1)
    assert not needs_eager_step([Never()], 1) and not needs_eager_step([], 1)


def test_trainer_compile_equals_eager_with_bn_schedule_and_nan_checks(fresh_dynamo,
                                                                     monkeypatch):
    """Trainer(compile=True): the same weights, BN statistics and history as the eager run,
    with an lr that changes every step, NanGuard steps running eagerly in between, a last
    partial batch, validation in eval mode between epochs, and the guards of the compiled
    graph skipped on the calls whose inputs were already checked."""
    from trainwell.train import NanGuard, Trainer
    from trainwell.train import step as step_module

    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(88, 6, generator=g), torch.randint(0, 3, (88,), generator=g)
    xv, yv = torch.randn(20, 6, generator=g), torch.randint(0, 3, (20,), generator=g)
    set_stance, skip = step_module._stance_setter()
    skipped = []

    def counting(stance):
        skipped.append(stance is skip)
        return set_stance(stance)

    monkeypatch.setattr(step_module, "_stance_setter", lambda: (counting, skip))

    def run(compile_):
        t = Trainer(_net(bn=True), optimizer="momentum", lr=0.05, schedule="exponential",
                    schedule_params={"decay_steps": 4}, clip_global_norm=1.0, l1=1e-4,
                    callbacks=[NanGuard(check_every=4)], device="cpu", compile=compile_)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            t.fit(x, y, epochs=3, batch_size=16, validation_data=(xv, yv))  # 6 steps an epoch
        return t

    from torch._dynamo.utils import counters
    ref = run(False)
    counters.clear()
    fast = run(True)
    assert fast.train_step.compiled_steps > 0 and fast.train_step.compiled_steps < fast.step
    # the fused SGD kernel (op by op) runs its multi-tensor form inside the one graph
    assert not counters["graph_break"]
    assert sum(skipped) >= 4  # calls that skipped the guards (and each stance was restored)
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(fast.model.state_dict()[k], v, rtol=1e-4, atol=1e-5)
    for a, b in zip(ref.history, fast.history, strict=True):
        for key in ("loss", "accuracy", "penalty", "lr", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-4)


def test_cycled_momentum_stays_compiled_and_a_changed_constant_runs_eagerly(monkeypatch):
    """1cycle cycles the momentum every step: it is an input of the graph (no eager steps);
    a hyperparameter that is a constant of the graph (here weight decay) changing makes that
    step run op by op instead of recompiling."""
    graph_calls = []

    def fake_compile(fn, **kw):
        def run(*a):
            graph_calls.append(1)
            return fn(*a)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    model, ref = _net(), _net()
    opt, ref_opt = (torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, ref))
    step = make_train_step(model, F.cross_entropy, opt, compile=True)
    ref_step = make_train_step(ref, F.cross_entropy, ref_opt)
    moms = [0.9, 0.9, 0.9, 0.85, 0.8, 0.8]
    decays = [0.0, 0.0, 0.0, 0.0, 0.0, 0.01]
    for (xb, yb), m, wd in zip(_batches(6), moms, decays, strict=True):
        for o in (opt, ref_opt):
            o.param_groups[0]["momentum"], o.param_groups[0]["weight_decay"] = m, wd
        step(xb, yb), ref_step(xb, yb)
    # step 1 primes the state; steps 2-5 run the graph whatever the momentum; step 6 changed
    # the weight decay, a constant of the graph
    assert len(graph_calls) == 4 and step.eager_steps == 2
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["lr"] == 0.1


def test_default_recipe_adamw_onecycle_runs_compiled_and_equals_eager(fresh_dynamo):
    """The default recipe's optimizer and schedule (fused AdamW with weight decay, 1cycle
    cycling the lr and β1 every step): every step after the first runs one compiled graph, the
    result equals the eager run to float rounding, and the optimizer's state dict (what a
    checkpoint saves) holds plain floats and loads into a fresh optimizer."""
    import io

    from trainwell.optim import make_optimizer, make_schedule
    from trainwell.optim.schedules import apply_schedule

    def run(compile_):
        model = _net()
        opt = make_optimizer(model.parameters(), "adamw", lr=0.01, weight_decay=0.05)
        sched = make_schedule("onecycle", base_lr=0.01, steps_per_epoch=10, epochs=2)
        apply_schedule(opt, sched, 0)
        step = make_train_step(model, F.cross_entropy, opt, compile=compile_, schedule=sched)
        betas = []
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no silent fallback to eager
            outs = [step(xb, yb, i) for i, (xb, yb) in enumerate(_batches(20, seed=4))]
            betas = [sched.momentum_at(i) for i in range(20)]
        return model, opt, step, outs, betas

    from torch._dynamo.utils import counters
    counters.clear()
    (ref, ref_opt, _, ref_outs, betas), (fast, opt, step, outs, _) = run(False), run(True)
    # one graph, no break: the fused AdamW kernel (op by op) runs its multi-tensor form inside
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    assert sum(a != b for a, b in zip(betas, betas[1:], strict=False)) >= 17  # β1 moves
    assert step.compiled_steps == 19 and step.eager_steps == 1
    for a, b in zip(ref_outs, outs, strict=True):
        torch.testing.assert_close(b.loss, a.loss, rtol=1e-4, atol=1e-6)
    for pe, pf in zip(ref.parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(pf, pe, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(opt.state[pf]["exp_avg_sq"], ref_opt.state[pe]["exp_avg_sq"],
                                   rtol=1e-4, atol=1e-9)
    saved = opt.state_dict()
    for g, ge in zip(saved["param_groups"], ref_opt.state_dict()["param_groups"], strict=True):
        assert type(g["lr"]) is float and all(type(b) is float for b in g["betas"])
        assert g == ge  # the same hyperparameters, the same form (fused, not capturable)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    again = make_optimizer(_net().parameters(), "adamw", lr=0.01, weight_decay=0.05)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert float(again.state_dict()["state"][0]["step"]) == 20


def test_cpp_wrapper_failure_retries_with_the_python_wrapper(monkeypatch):
    seen = []

    def fake_compile(fn, **kw):
        cpp = kw.get("options", {}).get("cpp_wrapper", False)
        seen.append(cpp)
        return _raiser if cpp else fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = _net()
    step = make_train_step(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1),
                           compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for xb, yb in _batches(3):
            step(xb, yb)
    assert seen == [True, False] and step.compiled and step.compiled_steps == 2
