"""The rules of ``advise`` on hand-made histories: each threshold, each exclusion, each
proposal tied to the chapter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainwell.config import Recipe, apply_overrides
from trainwell.diagnose import ProbeRecord, judge
from trainwell.diagnose.advice import find_problems
from trainwell.diagnose.probes import STAT_NAMES
from trainwell.diagnose.proposals import GUIDELINES, propose


def _history(loss, val_loss=None, acc=None, val_acc=None, lr=None):
    n = len(loss)
    rows = []
    for i in range(n):
        row = {"epoch": i + 1, "loss": loss[i], "lr": (lr or [0.01] * n)[i]}
        if val_loss is not None:
            row["val_loss"] = val_loss[i]
        if acc is not None:
            row["accuracy"], row["val_accuracy"] = acc[i], val_acc[i]
        rows.append(row)
    return rows


def _summary(status="completed", train_acc=None, val_acc=None, train_loss=None, k=10):
    final = {}
    if train_acc is not None:
        final.update(train_accuracy=train_acc, val_accuracy=val_acc)
    if train_loss is not None:
        final["train_loss"] = train_loss
    return {"status": status, "metrics": {"final": final},
            "dataset": {"task": "multiclass", "n_outputs": k}}


def _recipe(*sets):
    return apply_overrides(Recipe(), ["schedule.name=constant", "optimizer.lr=0.01", *sets])


def _keys(*args, **kw):
    return [f.key for f in find_problems(*args, **kw)]


def test_overfitting_when_the_validation_loss_ends_10_percent_above_its_minimum():
    loss = [1.0, 0.8, 0.6, 0.4, 0.3]
    for rise, expected in ((0.11, True), (0.09, False)):
        val = [1.0, 0.8, 0.7, 0.75, 0.7 * (1 + rise)]
        found = find_problems(_history(loss, val), _summary(), _recipe())
        assert ("overfitting" in [f.key for f in found]) is expected
    over = find_problems(_history(loss, [1.0, 0.8, 0.7, 0.75, 0.8]), _summary(), _recipe())[0]
    assert over.key == "overfitting" and "14% above its minimum 0.700 (epoch 3)" in over.evidence[0]


def test_underfitting_needs_a_small_gap_and_a_loss_far_from_zero():
    chance = math.log(10)
    plateau = [2.0, 1.6, 1.5, 1.49, 1.485, 1.48]
    s = _summary(train_acc=0.50, val_acc=0.49, train_loss=1.48)
    f = find_problems(_history(plateau, [1.6] * 6), s, _recipe())[0]
    assert f.key == "underfitting" and "(plateau)" in f.evidence[0]
    assert "64% of a uniform guess" in f.evidence[2]
    assert all(not p.sets[0].startswith("train.epochs") for p in propose([f], _recipe()))
    falling = [2.0, 1.6, 1.5, 1.4, 1.3, 1.2]     # still learning, but 52 % of a uniform guess
    f = find_problems(_history(falling, [1.6] * 6), s, _recipe())[0]
    assert f.key == "underfitting" and "still fell" in f.evidence[0]
    assert "still_improving" not in _keys(_history(falling, [1.6] * 6), s, _recipe())
    assert ["train.epochs=30"] in [p.sets for p in propose([f], _recipe())]
    fitted = _summary(train_acc=0.99, val_acc=0.985, train_loss=0.2 * chance)  # < 25 % of ln K
    assert "underfitting" not in _keys(_history(plateau, [1.6] * 6), fitted, _recipe())
    gap = _summary(train_acc=0.60, val_acc=0.52, train_loss=1.48)              # 8 points
    assert "underfitting" not in _keys(_history(plateau, [1.6] * 6), gap, _recipe())


def test_a_loss_spike_between_epochs_means_the_learning_rate_is_too_high():
    assert _keys(_history([1.0, 0.8, 0.86, 0.7]), _summary(), _recipe())[0] == "lr_too_high"
    assert "lr_too_high" not in _keys(_history([1.0, 0.8, 0.83, 0.7]), _summary(), _recipe())
    # near zero a doubling is noise: the rise must also exceed 5 % of the first epoch's loss
    assert "lr_too_high" not in _keys(_history([1.0, 0.2, 0.01, 0.02, 0.01]), _summary(),
                                      _recipe())


def test_a_diverged_run_is_a_learning_rate_too_high_and_its_curves_are_not_read():
    s = _summary(status="diverged")
    s["divergence"] = {"step": 37, "layer": "hidden2.linear.weight"}
    found = find_problems(_history([1.0, 0.9], [1.0, 1.5]), s, _recipe())
    assert [f.key for f in found] == ["lr_too_high"]
    assert "step 37" in found[0].evidence[0] and found[0].confidence >= 0.9


def test_a_loss_above_a_uniform_guess_means_the_learning_rate_is_too_high():
    f = find_problems(_history([9.0, 6.0, 5.5]), _summary(k=4), _recipe())[0]
    assert f.key == "lr_too_high" and f"{math.log(4):.3g}" in f.evidence[-1]


def test_lr_too_low_needs_smooth_falling_curves_and_the_finder_10x_above():
    h = _history([2.0, 1.5, 1.2, 1.0], [2.0, 1.6, 1.3, 1.1])
    assert "lr_too_low" in _keys(h, _summary(), _recipe(), lr_suggestion=0.1)
    assert "lr_too_low" not in _keys(h, _summary(), _recipe(), lr_suggestion=0.09)
    assert "lr_too_low" not in _keys(h, _summary(), _recipe())       # the finder decides
    low = next(f for f in find_problems(h, _summary(), _recipe(), lr_suggestion=0.5)
               if f.key == "lr_too_low")
    assert low.confidence_word == "high" and "50×" in low.evidence[1]


def test_still_improving_is_a_note_when_the_schedule_annealed_to_zero():
    h = _history([1.0, 0.8, 0.6, 0.5], [1.0, 0.9, 0.8, 0.7], lr=[0.01, 0.01, 0.005, 0.0001])
    f = next(f for f in find_problems(h, _summary(), _recipe()) if f.key == "still_improving")
    assert not f.alarming and "annealed" in f.evidence[-1]
    h = _history([1.0, 0.8, 0.6, 0.5], [1.0, 0.9, 0.8, 0.7])
    f = next(f for f in find_problems(h, _summary(), _recipe()) if f.key == "still_improving")
    assert f.alarming


@pytest.mark.parametrize("sets,words", [
    (["model.batch_norm=before"], "model.batch_norm"),
    (["model.init=he"], "model.init"),
    (["data.standardize=false"], "data.standardize"),
    (["regularization.dropout=0.1", "regularization.dropout_kind=standard"], "dropout_kind"),
])
def test_selu_that_cannot_self_normalize_is_named_with_the_field(sets, words):
    f = find_problems(_history([1.0, 0.9]), _summary(),
                      _recipe("model.activation=selu", *sets))[0]
    assert f.key == "selu_not_self_normalizing" and words in f.evidence[0]
    assert "selu_not_self_normalizing" not in _keys(_history([1.0, 0.9]), _summary(),
                                                    _recipe("model.activation=selu"))


def test_early_stopping_with_patience_1_stopped_too_early():
    h = _history([1.0, 0.7, 0.5], [1.0, 0.9, 0.95])
    r = _recipe("train.patience=1", "train.epochs=30")
    assert _keys(h, _summary(status="stopped"), r)[0] == "early_stopping_too_early"
    assert "early_stopping_too_early" not in _keys(h, _summary(status="stopped"),
                                                   _recipe("train.patience=5"))


def test_a_constant_rate_with_a_zigzag_validation_loss_ended_too_high():
    loss = [1.0, 0.8, 0.7, 0.65, 0.62, 0.6, 0.59, 0.58]
    val = [1.0, 0.85, 0.8, 0.78, 0.83, 0.79, 0.84, 0.80]
    assert "schedule_ended_high" in _keys(_history(loss, val), _summary(), _recipe())
    h = _history(loss, val, lr=[0.01, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0003, 0.0001])
    assert "schedule_ended_high" not in _keys(h, _summary(), _recipe())


def _record(dead):
    col = {n: i for i, n in enumerate(STAT_NAMES)}
    stats = np.zeros((4, 3, len(STAT_NAMES)))
    stats[:, :, col["act_std"]] = 1.0
    stats[:, :, col["saturated"]] = np.nan
    stats[:, :, col["dead"]] = dead
    stats[:, :, col["grad_norm"]] = 1.0
    stats[:, :, col["weight_norm"]] = 10.0
    stats[:, :, col["update_norm"]] = 0.01
    return ProbeRecord(steps=np.arange(4) * 10, stats=stats, hists=np.zeros((4, 3, 2, 4)),
                       layers=["hidden1", "hidden2", "output"], modules=["0", "1", "2"],
                       kinds=["relu"] * 3, n_weights=np.full(3, 100))


def test_gradient_verdicts_become_findings_and_borderline_ones_notes():
    h = _history([1.0, 0.9, 0.85])
    clear = judge(_record(np.array([[0.9, 0.1, np.nan]] * 4))).to_dict()
    f = find_problems(h, _summary(), _recipe(), clear)[0]
    assert f.key == "dead_units" and "hidden1" in f.evidence[0] and f.confidence_word == "high"
    near = judge(_record(np.array([[0.53, 0.1, np.nan]] * 4))).to_dict()
    notes = [f for f in find_problems(h, _summary(), _recipe(), near)
             if f.key == "borderline_gradients"]
    assert len(notes) == 1 and not notes[0].alarming and "53%" in notes[0].evidence[0]


# ---- proposals -------------------------------------------------------------------------------
def _overfit():
    return find_problems(_history([1.0, 0.8, 0.6, 0.4, 0.3], [1.0, 0.8, 0.7, 0.75, 0.9]),
                         _summary(), _recipe())


def test_at_most_three_proposals_each_a_set_line_a_diff_and_a_guideline():
    recipe = _recipe()
    props = propose(_overfit(), recipe)
    assert [p.sets for p in props] == [["regularization.dropout=0.2"],
                                       ["regularization.l2=0.0001"],
                                       ["regularization.max_norm=1.0"]]
    for p in props:
        assert p.guideline in GUIDELINES.values() and p.addresses == ["overfitting"]
        changed = apply_overrides(recipe, p.sets).flat()
        assert [(k, recipe.flat()[k], changed[k]) for k, _, _ in p.diff] == p.diff
    assert props[0].diff_text() == ("- regularization.dropout = 0.0\n"
                                    "+ regularization.dropout = 0.2")
    assert "10–50 %" in props[0].guideline


def test_a_remedy_the_recipe_already_has_is_skipped():
    recipe = _recipe("regularization.dropout=0.5", "optimizer.name=adamw")
    sets = [s for p in propose(_overfit(), recipe) for s in p.sets]
    assert not any(s.startswith("regularization.dropout") for s in sets)
    assert sets[0] == "optimizer.weight_decay=0.01"          # AdamW: weight decay (Table 11-3)


def test_the_first_remedy_of_each_finding_comes_before_second_ones():
    found = find_problems(_history([1.0, 0.8, 0.6, 0.4, 0.3], [1.0, 0.8, 0.7, 0.75, 0.9]),
                          _summary(), _recipe("model.activation=selu", "model.batch_norm=before"))
    assert [f.key for f in found][:2] == ["selu_not_self_normalizing", "overfitting"]
    props = propose(found, _recipe("model.activation=selu", "model.batch_norm=before"))
    assert props[0].sets == ["model.batch_norm=none"] and props[1].addresses == ["overfitting"]


def test_a_healthy_run_still_gets_the_remedies_of_its_notes():
    h = _history([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, 0.5, 0.5])
    found = find_problems(h, _summary(train_acc=0.97, val_acc=0.90), _recipe())
    assert [f.key for f in found] == ["generalization_gap"] and not found[0].alarming
    assert propose(found, _recipe())[0].sets == ["regularization.dropout=0.2"]
