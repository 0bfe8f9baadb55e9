"""Schedules against the chapter's formulas, computed by hand at chosen iterations."""

import math

import pytest
import torch
from torch import nn

from trainwell.errors import CheckpointError, ConfigError
from trainwell.optim import (
    SCHEDULES,
    apply_schedule,
    make_optimizer,
    make_schedule,
    plot_schedule,
    schedule_curve,
)

RUN = {"steps_per_epoch": 10, "epochs": 10}


def test_constant_schedule_never_changes():
    s = make_schedule("constant", base_lr=0.05, **RUN)
    assert [s.lr_at(t) for t in (0, 7, 99, 10_000)] == [0.05] * 4
    assert s.momentum_at(3) is None


@pytest.mark.parametrize("t", [0, 1, 20, 40, 63, 1000])
@pytest.mark.parametrize("c", [1.0, 2.0])
def test_power_schedule_matches_eta0_over_one_plus_t_over_s_to_the_c(t, c):
    s = make_schedule("power", base_lr=0.01, decay_steps=20, power=c, **RUN)
    assert math.isclose(s.lr_at(t), 0.01 / (1 + t / 20) ** c, rel_tol=1e-12)


def test_power_schedule_ratio_between_multiples_of_s_follows_seed_eq_2():
    # η((k+1)s) / η(ks) = (1 − 1/(k+2))^c
    s = make_schedule("power", base_lr=1.0, decay_steps=7, power=2, **RUN)
    for k in range(4):
        ratio = s.lr_at((k + 1) * 7) / s.lr_at(k * 7)
        assert math.isclose(ratio, (1 - 1 / (k + 2)) ** 2, rel_tol=1e-12)


def test_keras_decay_is_power_schedule_with_s_one_over_decay():
    # keras SGD(lr=0.01, decay=1e-4): η = 0.01 / (1 + 1e-4·t)
    s = make_schedule("power", base_lr=0.01, decay_steps=1e4, **RUN)
    assert math.isclose(s.lr_at(5000), 0.01 / 1.5, rel_tol=1e-12)


@pytest.mark.parametrize("t", [0, 5, 20, 40, 55])
def test_exponential_schedule_matches_eta0_times_point1_to_t_over_s(t):
    s = make_schedule("exponential", base_lr=0.01, decay_steps=20, **RUN)
    assert math.isclose(s.lr_at(t), 0.01 * 0.1 ** (t / 20), rel_tol=1e-12)


def test_exponential_schedule_drops_tenfold_every_s_steps():
    s = make_schedule("exponential", base_lr=0.3, decay_steps=13, **RUN)
    for k in range(4):
        assert math.isclose(s.lr_at((k + 1) * 13) / s.lr_at(k * 13), 0.1, rel_tol=1e-12)


def test_decay_steps_default_to_the_whole_run():
    s = make_schedule("exponential", base_lr=1.0, **RUN)
    assert math.isclose(s.lr_at(100), 0.1, rel_tol=1e-12)


def test_piecewise_switches_exactly_at_epoch_boundaries():
    # Géron: 0.01 for epochs < 5, 0.005 for epochs < 15, else 0.001; 10 steps per epoch.
    s = make_schedule("piecewise", base_lr=0.01, steps_per_epoch=10, epochs=20,
                      boundaries=[5, 15], values=[0.01, 0.005, 0.001])
    assert s.steps_in_epochs
    expect = {0: 0.01, 49: 0.01, 50: 0.005, 149: 0.005, 150: 0.001, 199: 0.001}
    assert {t: s.lr_at(t) for t in expect} == expect


def test_piecewise_default_values_divide_by_ten_at_each_boundary():
    s = make_schedule("piecewise", base_lr=0.1, boundaries=[2, 4], **RUN)
    assert [round(s.lr_at(t), 12) for t in (0, 20, 40)] == [0.1, 0.01, 0.001]


def plateau(**kw):
    return make_schedule("performance", base_lr=0.1, **RUN, **kw)


def test_performance_reduces_after_patience_epochs_and_not_before():
    s = plateau(factor=0.5, patience=3)
    s.on_epoch_end(0, 1.0)          # first value is the best so far
    s.on_epoch_end(1, 1.0)          # 1 epoch without improvement
    s.on_epoch_end(2, 1.2)          # 2
    assert s.lr_at(30) == 0.1
    s.on_epoch_end(3, 1.0)          # 3 = patience → ×0.5
    assert math.isclose(s.lr_at(40), 0.05)
    s.on_epoch_end(4, 0.9)          # improvement resets the count
    s.on_epoch_end(5, 0.95)
    s.on_epoch_end(6, 0.95)
    assert math.isclose(s.lr_at(70), 0.05)
    s.on_epoch_end(7, 0.95)
    assert math.isclose(s.lr_at(80), 0.025)


def test_performance_respects_min_lr_and_ignores_missing_metric():
    s = plateau(factor=0.1, patience=1, min_lr=0.005)
    s.on_epoch_end(0, 1.0)
    s.on_epoch_end(1, None)         # no validation this epoch: nothing counted
    assert s.lr_at(0) == 0.1
    for e in range(2, 6):
        s.on_epoch_end(e, 2.0)
    assert s.lr_at(0) == 0.005


def test_performance_mode_max_for_accuracy_and_tensor_metric():
    s = plateau(factor=0.5, patience=1, mode="max")
    s.on_epoch_end(0, torch.tensor(0.80))
    s.on_epoch_end(1, torch.tensor(0.85))  # improved
    assert s.lr_at(0) == 0.1
    s.on_epoch_end(2, torch.tensor(0.84))
    assert math.isclose(s.lr_at(0), 0.05)


def test_performance_state_dict_resumes_the_plateau_count():
    a = plateau(factor=0.5, patience=2)
    a.on_epoch_end(0, 1.0)
    a.on_epoch_end(1, 1.5)
    b = plateau(factor=0.5, patience=2)
    b.load_state_dict(a.state_dict())
    b.on_epoch_end(2, 1.5)          # second bad epoch only because the count was restored
    assert math.isclose(b.lr_at(0), 0.05)
    with pytest.raises(CheckpointError):
        make_schedule("constant", base_lr=0.1, **RUN).load_state_dict(a.state_dict())


def onecycle(**kw):
    return make_schedule("1cycle", base_lr=0.1, **RUN, **kw)  # T = 100 steps


def test_onecycle_start_peak_and_end_values():
    s = onecycle()  # start 0.01, peak 0.1 at t=45, back to 0.01 at t=90, 1e-4 at t=100
    start, peak, final = 0.1 / 10, 0.1, 0.1 / 1000
    assert math.isclose(s.lr_at(0), start)
    assert math.isclose(s.lr_at(9), start + (peak - start) * 9 / 45)
    assert math.isclose(s.lr_at(45), peak)
    assert math.isclose(s.lr_at(68), peak - (peak - start) * 23 / 45)
    assert math.isclose(s.lr_at(90), start)
    assert math.isclose(s.lr_at(95), start + (final - start) * 0.5)
    assert math.isclose(s.lr_at(100), final)
    assert math.isclose(s.lr_at(500), final)
    assert max(s.lr_at(t) for t in range(100)) == s.lr_at(45)


def test_onecycle_momentum_moves_inversely_to_the_learning_rate():
    s = onecycle(max_momentum=0.95, min_momentum=0.85)
    assert math.isclose(s.momentum_at(0), 0.95)
    assert math.isclose(s.momentum_at(45), 0.85)
    assert math.isclose(s.momentum_at(90), 0.95)
    assert math.isclose(s.momentum_at(97), 0.95)
    for t in range(0, 91):
        lr_frac = (s.lr_at(t) - 0.01) / (0.1 - 0.01)
        mom_frac = (0.95 - s.momentum_at(t)) / (0.95 - 0.85)
        assert math.isclose(lr_frac, mom_frac, abs_tol=1e-9)


def test_onecycle_max_lr_and_fractions_are_honoured():
    s = onecycle(max_lr=1.0, start_div=4, final_div=100, warmup_frac=0.3, anneal_frac=0.2)
    assert math.isclose(s.lr_at(0), 0.25) and math.isclose(s.lr_at(30), 1.0)
    assert math.isclose(s.lr_at(80), 0.25) and math.isclose(s.lr_at(100), 0.01)


def test_onecycle_without_final_anneal_and_on_a_tiny_run():
    s = onecycle(anneal_frac=0.0, warmup_frac=0.5)
    assert math.isclose(s.lr_at(50), 0.1) and math.isclose(s.lr_at(100), 0.01)
    assert math.isclose(s.lr_at(99), 0.1 - 0.09 * 49 / 50)
    tiny = make_schedule("onecycle", base_lr=0.1, steps_per_epoch=1, epochs=1)
    assert math.isclose(tiny.lr_at(0), 0.01) and math.isclose(tiny.lr_at(1), 1e-4)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_is_a_pure_function_of_the_counter(name):
    params = {"boundaries": [3, 6]} if name == "piecewise" else {}
    a = make_schedule(name, base_lr=0.1, **RUN, **params)
    b = make_schedule(name, base_lr=0.1, **RUN, **params)
    forward = [a.lr_at(t) for t in range(100)]
    backward = [b.lr_at(t) for t in reversed(range(100))][::-1]
    assert forward == backward
    assert all(lr > 0 for lr in forward)


def test_schedule_curve_and_plot_without_training(tmp_path):
    s = onecycle()
    steps, lrs, moms = schedule_curve(s)
    assert len(steps) == len(lrs) == len(moms) == 100
    assert math.isclose(lrs[45], 0.1)
    _, lrs2, moms2 = schedule_curve(make_schedule("power", base_lr=1.0, decay_steps=1, **RUN), 4)
    assert moms2 is None and list(lrs2) == [1.0, 0.5, 1 / 3, 0.25]
    out = plot_schedule(s, tmp_path / "plots" / "lr.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_apply_schedule_respects_group_lr_scale_and_cycles_sgd_momentum():
    body, head = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = make_optimizer([{"params": [body], "lr_scale": 0.1}, {"params": [head]}],
                         "momentum", lr=0.1, momentum=0.9)
    lr = apply_schedule(opt, onecycle(), 45)
    assert math.isclose(lr, 0.1)
    assert math.isclose(opt.param_groups[0]["lr"], 0.01)
    assert math.isclose(opt.param_groups[1]["lr"], 0.1)
    assert all(math.isclose(g["momentum"], 0.85) for g in opt.param_groups)


def test_apply_schedule_sets_adam_beta1_and_leaves_plain_sgd_without_momentum():
    adam = make_optimizer([nn.Parameter(torch.zeros(2))], "adam", lr=0.1, beta_2=0.99)
    apply_schedule(adam, onecycle(), 0)
    assert adam.param_groups[0]["betas"] == (pytest.approx(0.95), 0.99)
    sgd = make_optimizer([nn.Parameter(torch.zeros(2))], "sgd", lr=0.1)
    apply_schedule(sgd, onecycle(), 0)
    assert sgd.param_groups[0]["momentum"] == 0.0
    apply_schedule(sgd, make_schedule("exponential", base_lr=0.1, decay_steps=10, **RUN), 10)
    assert math.isclose(sgd.param_groups[0]["lr"], 0.01)


def test_schedule_drives_a_real_optimizer_step():
    p = nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer([p], "sgd", lr=1.0)
    sched = make_schedule("exponential", base_lr=1.0, decay_steps=1, **RUN)
    for step in range(2):
        apply_schedule(opt, sched, step)
        opt.zero_grad()
        p.sum().backward()   # gradient 1
        opt.step()
    assert math.isclose(p.item(), 1.0 - 1.0 - 0.1, rel_tol=1e-6)


def test_aliases_and_params_of_other_schedules_are_accepted():
    assert make_schedule("One-Cycle", base_lr=0.1, **RUN).name == "onecycle"
    s = make_schedule("exponential", base_lr=0.1, decay_steps=5, patience=3, factor=None, **RUN)
    assert s.name == "exponential"


@pytest.mark.parametrize("name,kwargs,field", [
    ("cosine", {}, "schedule.name"),
    ("power", {"decay_step": 5}, "schedule.decay_step"),
    ("power", {"decay_steps": 0}, "schedule.decay_steps"),
    ("power", {"power": -1}, "schedule.power"),
    ("exponential", {"decay_steps": -3}, "schedule.decay_steps"),
    ("piecewise", {}, "schedule.boundaries"),
    ("piecewise", {"boundaries": [5, 3]}, "schedule.boundaries"),
    ("piecewise", {"boundaries": [5], "values": [0.1]}, "schedule.values"),
    ("performance", {"factor": 1.0}, "schedule.factor"),
    ("performance", {"patience": -1}, "schedule.patience"),
    ("performance", {"mode": "up"}, "schedule.mode"),
    ("onecycle", {"warmup_frac": 0.95}, "schedule.warmup_frac"),
    ("onecycle", {"anneal_frac": -0.1}, "schedule.anneal_frac"),
    ("onecycle", {"min_momentum": 0.99}, "schedule.min_momentum"),
    ("onecycle", {"max_lr": 0}, "schedule.max_lr"),
])
def test_bad_schedule_params_raise_config_error_naming_the_field(name, kwargs, field):
    with pytest.raises(ConfigError) as err:
        make_schedule(name, base_lr=0.1, **RUN, **kwargs)
    assert err.value.field == field


def test_bad_run_length_and_base_lr_are_config_errors():
    with pytest.raises(ConfigError, match="optimizer.lr"):
        make_schedule("constant", base_lr=-1, **RUN)
    with pytest.raises(ConfigError, match="train.epochs"):
        make_schedule("constant", base_lr=0.1, steps_per_epoch=10, epochs=0)
    with pytest.raises(ConfigError, match="schedule.steps_per_epoch"):
        make_schedule("constant", base_lr=0.1, steps_per_epoch=0, epochs=1)
