"""``step = "epoch"``: every schedule evaluated at the epoch index, constant within an epoch."""

import math

import pytest

from trainwell.errors import ConfigError
from trainwell.optim import SCHEDULES, make_schedule

SPE, EPOCHS = 7, 12

# The formulas of the chapter, written out with the epoch e as the counter.
FORMULAS = {
    "constant": ({}, lambda e: 0.1),
    "power": ({"decay_steps": 3, "power": 2.0}, lambda e: 0.1 / (1 + e / 3) ** 2),
    "exponential": ({"decay_steps": 5}, lambda e: 0.1 * 0.1 ** (e / 5)),
    "piecewise": ({"boundaries": [2.5, 8], "values": [0.1, 0.05, 0.01]},
                  lambda e: 0.1 if e < 3 else 0.05 if e < 8 else 0.01),
}


def _onecycle_at(e: float) -> float:
    t1, t2, total, peak = 0.45 * EPOCHS, 0.9 * EPOCHS, EPOCHS, 0.1
    lo, final = peak / 10, peak / 1000
    if e < t1:
        return lo + (peak - lo) * e / t1
    if e < t2:
        return peak + (lo - peak) * (e - t1) / (t2 - t1)
    return lo + (final - lo) * (min(e, total) - t2) / (total - t2)


FORMULAS["onecycle"] = ({}, _onecycle_at)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_epoch_stepping_is_constant_within_an_epoch_and_the_formula_at_its_start(name):
    params, formula = FORMULAS[name]
    s = make_schedule(name, base_lr=0.1, steps_per_epoch=SPE, epochs=EPOCHS, step="epoch",
                      **params)
    for e in range(EPOCHS):
        rates = {s.lr_at(e * SPE + i) for i in range(SPE)}
        assert len(rates) == 1, f"epoch {e}: the rate changed within the epoch"
        assert rates.pop() == pytest.approx(formula(e), rel=1e-12)


@pytest.mark.parametrize("name", ["power", "exponential", "onecycle"])
def test_iteration_stepping_changes_every_iteration_and_epoch_mode_samples_it(name):
    params = FORMULAS[name][0]
    it = make_schedule(name, base_lr=0.1, steps_per_epoch=SPE, epochs=EPOCHS, **params)
    assert it.lr_at(1) != it.lr_at(2)
    # With lengths in epochs, epoch mode equals iteration mode evaluated at each epoch start
    # when iteration lengths are scaled by steps_per_epoch.
    scaled = {k: v * SPE for k, v in params.items() if k == "decay_steps"}
    it = make_schedule(name, base_lr=0.1, steps_per_epoch=SPE, epochs=EPOCHS,
                       **{**params, **scaled})
    ep = make_schedule(name, base_lr=0.1, steps_per_epoch=SPE, epochs=EPOCHS, step="epoch",
                       **params)
    for e in range(EPOCHS):
        assert ep.lr_at(e * SPE + SPE - 1) == pytest.approx(it.lr_at(e * SPE), rel=1e-9)


def test_onecycle_momentum_follows_the_epoch_counter_too():
    s = make_schedule("onecycle", base_lr=0.1, steps_per_epoch=SPE, epochs=EPOCHS, step="epoch")
    for e in range(EPOCHS):
        assert len({s.momentum_at(e * SPE + i) for i in range(SPE)}) == 1
    assert s.momentum_at(0) == 0.95


def test_every_schedule_takes_step_and_a_bad_unit_names_the_field():
    for _name, entry in SCHEDULES.items():
        assert entry.meta["params"]["step"] == "iteration"
    with pytest.raises(ConfigError, match="schedule.step.*iteration.*epoch"):
        make_schedule("exponential", base_lr=0.1, steps_per_epoch=2, epochs=2, step="batch")


def test_plateau_min_delta_defaults_to_keras_1e_4():
    s = make_schedule("performance", base_lr=0.1, steps_per_epoch=1, epochs=9, patience=1)
    assert s.min_delta == 1e-4
    s.on_epoch_end(0, 1.0)
    s.on_epoch_end(1, 1.0 - 5e-5)        # less than min_delta better: not an improvement
    assert s.lr_at(2) == pytest.approx(0.05)
    assert not math.isnan(s.best)
