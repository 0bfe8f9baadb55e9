"""Verdict rules on hand-made records, and the chapter's demonstrations on tiny networks."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from trainwell.diagnose import (
    DYING,
    EXPLODING,
    HEALTHY,
    REMEDIES,
    SATURATING,
    VANISHING,
    ProbeRecord,
    Thresholds,
    diagnose,
    judge,
)
from trainwell.diagnose.probes import STAT_NAMES
from trainwell.nn import build_model

_spec = importlib.util.spec_from_file_location("diagnose_test_helpers",
                                               Path(__file__).parent / "_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

COL = {n: i for i, n in enumerate(STAT_NAMES)}


def _record(n_layers=3, n_samples=4, **cols):
    """A record whose statistics are healthy except the columns given as (S, L) arrays."""
    stats = np.zeros((n_samples, n_layers, len(STAT_NAMES)))
    stats[:, :, COL["act_std"]] = 1.0
    stats[:, :, COL["saturated"]] = np.nan
    stats[:, :, COL["dead"]] = np.nan
    stats[:, :, COL["grad_norm"]] = 1.0
    stats[:, :, COL["weight_norm"]] = 10.0
    stats[:, :, COL["update_norm"]] = 0.01
    for k, v in cols.items():
        stats[:, :, COL[k]] = v
    return ProbeRecord(steps=np.arange(n_samples) * 10, stats=stats,
                       hists=np.zeros((n_samples, n_layers, 2, 4)),
                       layers=[f"hidden{i + 1}" for i in range(n_layers - 1)] + ["output"],
                       modules=[f"{i}" for i in range(n_layers)], kinds=["relu"] * n_layers,
                       n_weights=np.full(n_layers, 100))


def test_healthy_record_is_healthy():
    d = judge(_record())
    assert d.network == HEALTHY and d.problems == []
    assert "similar scale" in d.text()


def test_vanishing_below_one_hundredth_of_the_top_layer():
    g = np.array([[5e-3, 0.02, 1.0]] * 4)
    d = judge(_record(grad_norm=g))
    assert d.flagged(VANISHING) == ["hidden1"]
    assert d.network == VANISHING
    assert "0.005× the top layer's" in d.verdicts[0].reasons[0]


def test_exploding_on_non_finite_values_anywhere_in_the_run():
    nf = np.zeros((4, 3))
    nf[0, 1] = 7     # only in the first sample: still exploding
    d = judge(_record(grad_nonfinite=nf))
    assert d.flagged(EXPLODING) == ["hidden2"] and d.network == EXPLODING


def test_exploding_on_large_update_to_weight_ratio():
    u = np.full((4, 3), 0.01)
    u[:, 2] = 5.0     # update 0.5 × weight norm 10
    d = judge(_record(update_norm=u))
    assert d.flagged(EXPLODING) == ["output"]
    assert REMEDIES[EXPLODING] in d.remedies.values()


def test_exploding_on_gradient_growth_and_on_per_weight_ratio():
    g = np.ones((4, 3))
    g[2:, 0] = 500.0   # grew 500× since the first sample
    assert judge(_record(grad_norm=g)).flagged(EXPLODING) == ["hidden1"]
    g = np.ones((4, 3)) * [[1000.0, 1.0, 1.0]]
    assert "hidden1" in judge(_record(grad_norm=g)).flagged(EXPLODING)


def test_dying_and_saturating_thresholds():
    dead = np.array([[0.6, 0.4, np.nan]] * 4)
    sat = np.array([[np.nan, 0.3, np.nan]] * 4)
    d = judge(_record(dead=dead, saturated=sat))
    assert d.flagged(DYING) == ["hidden1"]
    assert d.flagged(SATURATING) == ["hidden2"]
    assert d.problems == [DYING, SATURATING] and d.network == DYING
    loose = judge(_record(dead=dead, saturated=sat), Thresholds(dead=0.7, saturated=0.5))
    assert loose.network == HEALTHY


def test_recent_window_is_the_last_half_of_the_samples():
    dead = np.array([[0.9, 0, 0]] * 2 + [[0.1, 0, 0]] * 2)   # units recovered
    assert judge(_record(dead=dead)).network == HEALTHY
    dead = dead[::-1].copy()                                  # units died during training
    assert judge(_record(dead=dead)).network == DYING


def test_divergence_reported_by_the_nan_guard_flags_the_named_layer():
    rec = _record()
    rec.meta["divergence"] = {"step": 12, "layer": "1.weight"}
    d = judge(rec)
    assert d.flagged(EXPLODING) == ["hidden2"]
    assert "NaN guard" in d.verdicts[1].reasons[0]


def test_to_dict_is_json_ready_and_table_has_one_row_per_layer():
    import json

    d = judge(_record(dead=np.array([[0.6, 0.4, np.nan]] * 4)))
    data = json.loads(json.dumps(d.to_dict()))
    assert data["network"] == DYING and data["layers"][2]["dead"] is None
    header, rows = d.table()
    assert header[-1] == "verdict" and len(rows) == 3 and rows[0][-1] == DYING
    assert rows[0][4] == "60.0" and rows[2][4] == "–"


# ---- the chapter's demonstrations, on tiny synthetic data -----------------------------------
def _fit(model, *, steps=40, lr=0.01, every=4, **trainer_kwargs):
    x, y = helpers.synthetic(n=512, d=16, k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return diagnose(model, x, y, steps=steps, every=every, batch_size=64,
                        trainer_kwargs={"lr": lr, "device": "cpu", **trainer_kwargs}).diagnosis


def _deep(activation, init, depth=20, width=32, **kw):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model(input_shape=(16,), n_outputs=4, hidden=(width,) * depth,
                           activation=activation, init=init, **kw)


def test_deep_sigmoid_with_standard_normal_init_vanishes_and_saturates_in_lower_layers():
    d = _fit(_deep("sigmoid", "normal", init_distribution="normal"))
    assert d.network == VANISHING
    assert "hidden1" in d.flagged(VANISHING) and "hidden2" in d.flagged(VANISHING)
    assert "hidden20" not in d.flagged(VANISHING)
    assert "hidden1" in d.flagged(SATURATING)
    assert "model.init=auto" in d.text()


@pytest.mark.parametrize("activation,init", [("relu", "he"), ("elu", "he"), ("selu", "lecun")])
def test_same_depth_with_he_relu_elu_or_selu_lecun_is_healthy(activation, init):
    d = _fit(_deep(activation, init, width=64 if activation == "relu" else 32))
    assert d.network == HEALTHY, d.text()


def test_sigmoid_with_batch_norm_is_healthy_again(flush_denormals):
    d = _fit(_deep("sigmoid", "normal", depth=20, batch_norm="before",
                    init_distribution="normal"), steps=16)
    assert d.network == HEALTHY, d.text()


def test_learning_rate_far_too_high_explodes_and_the_nan_guard_names_the_layer():
    model = _deep("relu", "he", depth=10)
    d = _fit(model, steps=60, lr=3.0, every=5)
    assert d.network == EXPLODING
    assert len(d.flagged(EXPLODING)) >= 1
    guard = [v.layer for v in d.verdicts if any("NaN guard" in r for r in v.reasons)]
    assert len(guard) == 1 and f"names {guard[0]}.linear.weight" in d.text()


def test_gradient_clipping_removes_the_exploding_flag():
    d = _fit(_deep("relu", "he", depth=10), steps=60, lr=3.0, every=5, clip_global_norm=1.0)
    assert EXPLODING not in d.problems, d.text()


def test_relu_pushed_by_huge_steps_dies_and_leaky_relu_clears_it():
    # built with the plain normal init this demonstration was calibrated with
    d = _fit(_deep("relu", "he", depth=10, init_distribution="normal"), steps=60, lr=1.0, every=5)
    assert DYING in d.problems, d.text()
    leaky = _fit(_deep("leaky_relu", "he", depth=10, init_distribution="normal"), steps=60,
                 lr=1.0, every=5)
    assert DYING not in leaky.problems and leaky.network == HEALTHY, leaky.text()


def test_large_negative_bias_kills_relu_units():
    model = _deep("relu", "he", depth=3)
    with torch.no_grad():
        model.hidden2.linear.bias.fill_(-20.0)
    d = _fit(model, steps=8, every=2)
    # hidden2 is dead; hidden3 then only sees zeros and its ReLUs output 0 too
    assert "hidden2" in d.flagged(DYING) and "hidden1" not in d.flagged(DYING)
    assert "leaky_relu" in d.text()
