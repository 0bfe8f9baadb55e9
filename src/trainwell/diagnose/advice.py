"""What a run says is wrong, in the chapter's words: findings with evidence and a confidence.

:func:`find_problems` reads plain data only — the run's history rows, its ``summary.json``,
its recipe and, when there is one, the gradient-health verdict (``Diagnosis.to_dict()``) —
so it can be tested on hand-made numbers and reused on any run. :mod:`trainwell.diagnose.proposals`
turns the findings into at most three changes of the recipe.

The rules (each finding keeps the numbers it was decided on as ``evidence``):

================================ ===========================================================
``lr_too_high``                  the run diverged, or the training loss rose by more than
                                 ``SPIKE`` (5 %) from one epoch to the next, ended above 1.5×
                                 the loss of a uniform guess (ln K) or reached 10× it, or the
                                 probes measured update/weight > 0.1 (exploding); the learning
                                 curves are then not read for over- or underfitting
gradient problems                the verdict's clear problems (exploding, vanishing, dying,
                                 saturating); its borderline ones become notes
``selu_not_self_normalizing``    SELU with batch norm, an initializer other than LeCun,
                                 unscaled inputs or standard dropout (Table 11-4)
``early_stopping_too_early``     early stopping ended the run with patience ≤ 2 epochs
``overfitting``                  the validation loss ended ``OVERFIT_RISE`` (10 %) above its
                                 minimum while the training loss kept falling, or the
                                 train − validation accuracy gap grew above ``GAP`` (5 points)
``underfitting``                 training ≈ validation (gap < 5 points) and the training loss
                                 still above 25 % of a uniform guess's (ln K), whether it
                                 plateaued (changed less than ``PLATEAU``, 2 %, over the last
                                 third of the epochs) or is still falling: the network fits
                                 even its own data badly
``lr_too_low``                   the training loss fell every epoch, smoothly, and was still
                                 falling at the end, and the LR finder suggests a rate at least
                                 10× the peak rate used (its rule already trains 10× below
                                 where the loss turns up)
``still_improving``              the validation loss is lowest at the last epoch and fell more
                                 than 1 % over the last epochs (early stopping never
                                 triggered); a note unless it fell more than 3 % while the
                                 learning rate was still above 10 % of its peak (a decay to
                                 ~0, as 1cycle ends, makes the last epochs improve anyway)
``generalization_gap`` (note)    train − validation accuracy > 5 points at the end while the
                                 validation loss did not rise: regularization may close it
``schedule_ended_high``          the learning rate ended at ≥ half its peak while the
                                 validation loss went up and down over the last epochs
================================ ===========================================================

Over- and underfitting exclude each other, as do a learning rate too high and too low.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "find_problems", "wants_lr_finder", "PRIORITY", "SPIKE", "OVERFIT_RISE", "GAP", "PLATEAU"]

SPIKE = 0.05          # a training-loss rise between epochs that plain noise does not make
OVERFIT_RISE = 0.10   # validation loss this far above its minimum (as in the report's note)
GAP = 0.05            # train − validation accuracy, in accuracy units
PLATEAU = 0.02        # relative change of the training loss over the last third of the epochs
UNDERFIT_LOSS = 0.25  # training loss above this fraction of ln K: the network fits its data badly
STILL_IMPROVING = 0.01

#: Order of the findings (most fundamental first): a learning rate that blows training up
#: makes every other reading meaningless; gradient flow comes before the learning curves.
PRIORITY = ("lr_too_high", "exploding_gradients", "vanishing_gradients", "dead_units",
            "saturated_units", "selu_not_self_normalizing", "early_stopping_too_early",
            "overfitting", "underfitting", "lr_too_low", "still_improving",
            "schedule_ended_high", "generalization_gap", "borderline_gradients")

_GRADIENT = {"exploding": ("exploding_gradients", "Exploding gradients"),
             "vanishing": ("vanishing_gradients", "Vanishing gradients"),
             "dying": ("dead_units", "Dead ReLU units"),
             "saturating": ("saturated_units", "Saturated units")}


@dataclass
class Finding:
    """One thing the run shows, with the numbers behind it.

    Attributes:
        key: a stable name (see :data:`PRIORITY`).
        title: a short heading in the chapter's words.
        evidence: sentences with the numbers from the run.
        confidence: 0–1; ``confidence_word`` says it as high / medium / low.
        alarming: False for notes that need no change (borderline values, a mild gap).
    """

    key: str
    title: str
    evidence: list[str]
    confidence: float
    alarming: bool = True
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def confidence_word(self) -> str:
        return "high" if self.confidence >= 0.75 else "medium" if self.confidence >= 0.5 \
            else "low"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "confidence_word": self.confidence_word}


def _series(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    out = []
    for row in history:
        v = row.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
    return out


def _rel(a: float, b: float) -> float:
    return (a - b) / max(abs(b), 1e-12)


def _peak_lr(recipe: Any, history: Sequence[dict[str, Any]]) -> float:
    lrs = [v for v in _series(history, "lr") if math.isfinite(v)]
    peak = recipe.optimizer.lr
    if recipe.schedule.name == "onecycle" and isinstance(recipe.schedule.max_lr, float):
        peak = recipe.schedule.max_lr
    return max([peak, *lrs])


def _margin(m: dict[str, Any]) -> float:
    """A margin of ``Diagnosis.to_dict()`` as a number (JSON keeps infinity as "inf")."""
    v = m.get("margin")
    if v in ("inf", "-inf"):
        return math.inf if v == "inf" else -math.inf
    return float(v) if isinstance(v, (int, float)) else -math.inf


def _chance_loss(summary: dict[str, Any]) -> float | None:
    """Cross-entropy of a uniform guess, ln K, for a multiclass run (None otherwise)."""
    data = summary.get("dataset") or {}
    k = data.get("n_outputs")
    if data.get("task", "multiclass") != "multiclass" or not isinstance(k, int) or k < 2:
        return None
    return math.log(k)


def _lr_too_high(history, summary, diagnosis) -> Finding | None:
    evidence, conf = [], 0.0
    if summary.get("status") == "diverged":
        div = summary.get("divergence") or {}
        where = f" at step {div.get('step')}" if div.get("step") is not None else ""
        layer = f" ({div.get('layer')})" if div.get("layer") else ""
        evidence.append(f"training diverged{where}{layer}: the loss became NaN/Inf")
        conf = 0.95
    loss = _series(history, "loss")
    if any(not math.isfinite(v) for v in loss) and not evidence:
        evidence.append("the training loss became NaN/Inf")
        conf = 0.95
    # a rise counts when it is large relative to the loss and to the first epoch's loss: near
    # zero, 0.01 → 0.02 doubles the loss but is noise, not instability
    floor = SPIKE * loss[0] if loss and math.isfinite(loss[0]) else 0.0
    spikes = [(i + 1, _rel(b, a)) for i, (a, b) in enumerate(zip(loss, loss[1:], strict=False))
              if math.isfinite(a) and math.isfinite(b) and _rel(b, a) > SPIKE
              and b - a > floor]
    if spikes:
        shown = ", ".join(f"+{r:.0%} at epoch {e + 1}" for e, r in spikes[:3])
        evidence.append(f"the training loss rose {len(spikes)}× between epochs ({shown})")
        conf = max(conf, min(0.9, 0.55 + 0.1 * len(spikes)))
    chance = _chance_loss(summary)
    finite = [v for v in loss if math.isfinite(v)]
    if chance and finite and finite[-1] > 1.5 * chance:
        evidence.append(f"the training loss ended at {finite[-1]:.3g}, above the {chance:.3g} "
                        "of a uniform guess over the classes")
        conf = max(conf, 0.85)
    elif chance and finite and max(finite) > 10 * chance:
        evidence.append(f"the training loss reached {max(finite):.3g} (a uniform guess: "
                        f"{chance:.3g})")
        conf = max(conf, 0.7)
    upd = ((diagnosis or {}).get("margins") or {}).get("exploding") or {}
    if upd.get("rule") == "update_ratio" and _margin(upd) > 0 and not upd.get("borderline"):
        evidence.append(f"{upd.get('layer')}: each step changes {upd['value']:.2g} of its "
                        "weights (update/weight > 0.1)")
        conf = max(conf, 0.85)
    if not evidence:
        return None
    return Finding("lr_too_high", "Learning rate too high", evidence, conf,
                   data={"spikes": len(spikes)})


def _gradient_findings(diagnosis: dict[str, Any] | None, source: str) -> list[Finding]:
    if not diagnosis:
        return []
    out = []
    margins = diagnosis.get("margins") or {}
    fresh = source == "probe"
    where = "a probe run from fresh weights" if fresh else "the probes during training"
    for problem in diagnosis.get("problems") or []:
        key, title = _GRADIENT[problem]
        layers = [lay["layer"] for lay in diagnosis.get("layers", [])
                  if problem in lay.get("flags", []) and problem not in lay.get("borderline", [])]
        reasons = [lay["reasons"][lay["flags"].index(problem)]
                   for lay in diagnosis.get("layers", []) if lay["layer"] in layers[:1]]
        m = margins.get(problem) or {}
        far = _margin(m) > 2 * float(m.get("band") or 0)
        shown = ", ".join(layers[:5]) + (f" and {len(layers) - 5} more" if len(layers) > 5 else "")
        ev = [f"{where} flag {shown}" + (f" (e.g. {reasons[0]})" if reasons else "")]
        conf = (0.9 if far else 0.7) - (0.1 if fresh else 0.0)
        out.append(Finding(key, title, ev, conf, data={"layers": layers, "problem": problem}))
    for problem in diagnosis.get("borderline") or []:
        m = margins.get(problem) or {}
        value = m.get("value")
        shown = (f"{100 * value:.0f}%" if m.get("rule") in ("dead", "saturated")
                 else f"{value:.2g}") if isinstance(value, (int, float)) else "?"
        out.append(Finding("borderline_gradients", f"Borderline {problem}",
                           [f"{m.get('layer')}: {m.get('rule')} {shown} is within the band of "
                            f"its threshold {m.get('threshold')} ({where})"], 0.3,
                           alarming=False, data={"problem": problem}))
    return out


def _selu(recipe: Any) -> Finding | None:
    m, r, d = recipe.model, recipe.regularization, recipe.data
    if m.activation != "selu":
        return None
    broken = []
    if m.batch_norm != "none":
        broken.append(f"model.batch_norm = {m.batch_norm!r} (self-normalization needs none)")
    if m.init not in ("auto", "lecun"):
        broken.append(f"model.init = {m.init!r} (needs LeCun initialization)")
    if not d.standardize:
        broken.append("data.standardize = false (inputs must have mean 0, std 1)")
    if (r.dropout > 0 or r.input_dropout > 0) and r.dropout_kind == "standard":
        broken.append("regularization.dropout_kind = 'standard' (use alpha dropout)")
    if not broken:
        return None
    return Finding("selu_not_self_normalizing", "SELU network cannot self-normalize",
                   broken, 0.9, data={"broken": broken})


def _early_stopping(history, summary, recipe) -> Finding | None:
    t = recipe.train
    if summary.get("status") != "stopped" or not t.early_stopping or t.patience > 2:
        return None
    n = len(history)
    loss = _series(history, "loss")
    falling = len(loss) >= 2 and _rel(loss[-2], loss[-1]) > PLATEAU
    ev = [f"early stopping with patience {t.patience} ended training after {n} of "
          f"{t.epochs} epochs"]
    if falling:
        ev.append(f"the training loss was still falling ({_rel(loss[-2], loss[-1]):.1%} in the "
                  "last epoch)")
    return Finding("early_stopping_too_early", "Early stopping stopped too early", ev,
                   0.85 if falling else 0.7)


def _gap_series(history) -> list[float]:
    return [r["accuracy"] - r["val_accuracy"] for r in history
            if isinstance(r.get("accuracy"), (int, float))
            and isinstance(r.get("val_accuracy"), (int, float))]


def _final_gap(summary, history) -> float | None:
    final = (summary.get("metrics") or {}).get("final") or {}
    if isinstance(final.get("train_accuracy"), (int, float)) and \
            isinstance(final.get("val_accuracy"), (int, float)):
        return final["train_accuracy"] - final["val_accuracy"]
    gaps = _gap_series(history)
    return gaps[-1] if gaps else None


def _overfitting(history, summary) -> Finding | None:
    val, loss = _series(history, "val_loss"), _series(history, "loss")
    if len(val) < 2 or len(loss) != len(val):
        return None
    best = min(range(len(val)), key=val.__getitem__)
    rise = _rel(val[-1], val[best])
    ev, conf = [], 0.0
    if rise > OVERFIT_RISE and loss[-1] < loss[best]:
        ev.append(f"the validation loss ended {rise:.0%} above its minimum {val[best]:.3f} "
                  f"(epoch {best + 1}) while the training loss fell from {loss[best]:.3f} "
                  f"to {loss[-1]:.3f}")
        conf = min(0.95, 0.6 + rise)
    gaps = _gap_series(history)
    final = _final_gap(summary, history)
    if len(gaps) >= 2 and final is not None and final > GAP and gaps[-1] > gaps[best] + 0.01:
        ev.append(f"the train − validation accuracy gap grew from {100 * gaps[best]:.1f} to "
                  f"{100 * gaps[-1]:.1f} points (final model: {100 * final:.1f})")
        conf = max(conf, 0.55) + (0.1 if conf else 0.0)
    if not ev:
        return None
    return Finding("overfitting", "Overfitting", ev, min(conf, 0.95),
                   data={"rise": rise, "gap": final})


def _underfitting(history, summary) -> Finding | None:
    loss = _series(history, "loss")
    gap = _final_gap(summary, history)
    if len(loss) < 3 or gap is None or not all(math.isfinite(v) for v in loss):
        return None
    k = min(max(2, len(loss) // 3), len(loss) - 1)
    change = _rel(loss[-1 - k], loss[-1])
    final = (summary.get("metrics") or {}).get("final") or {}
    train_loss = final.get("train_loss", loss[-1])
    chance = _chance_loss(summary)
    high_error = chance is None or train_loss > UNDERFIT_LOSS * chance
    plateau = change <= PLATEAU
    if gap > GAP or not high_error or (not plateau and chance is None):
        return None
    acc = final.get("train_accuracy")
    ev = [f"the training loss changed {change:.1%} over the last {k} epochs (plateau)"
          if plateau else f"the training loss still fell {change:.1%} over the last {k} epochs",
          f"training ≈ validation: accuracy gap {100 * gap:.1f} points"
          + (f" (train accuracy {acc:.3f})" if isinstance(acc, (int, float)) else "")]
    if chance is not None:
        ev.append(f"the training loss {train_loss:.3f} is still {train_loss / chance:.0%} of a "
                  f"uniform guess's ({chance:.3f})")
    conf = (0.6 if plateau else 0.5) + (0.1 if gap < 0.02 else 0.0) + (
        0.15 if chance is not None and train_loss > 0.5 * chance else 0.0)
    return Finding("underfitting", "Underfitting: the network cannot fit its training data",
                   ev, min(conf, 0.9), data={"gap": gap, "change": change, "plateau": plateau})


def _smooth_still_falling(history) -> tuple[bool, float]:
    loss = _series(history, "loss")
    if len(loss) < 3 or not all(math.isfinite(v) for v in loss):
        return False, 0.0
    smooth = all(b < a for a, b in zip(loss, loss[1:], strict=False))
    last = _rel(loss[-2], loss[-1])
    return smooth and last > PLATEAU, last


def wants_lr_finder(history: Sequence[dict[str, Any]]) -> bool:
    """Whether the curves point to a learning rate too low (the LR finder then decides):
    the training loss fell every epoch, smoothly, and still more than 2 % in the last one."""
    return _smooth_still_falling(history)[0]


def _lr_too_low(history, recipe, lr_suggestion) -> Finding | None:
    ok, last = _smooth_still_falling(history)
    if not ok or lr_suggestion is None:
        return None
    peak = _peak_lr(recipe, history)
    if lr_suggestion < 10 * peak:
        return None
    ev = [f"the training loss fell every epoch, smoothly, and still {last:.1%} in the last one",
          f"the LR finder suggests {lr_suggestion:.3g}, {lr_suggestion / peak:.0f}× the peak "
          f"rate used ({peak:.3g})"]
    return Finding("lr_too_low", "Learning rate too low", ev,
                   0.8 if lr_suggestion >= 30 * peak else 0.6,
                   data={"suggestion": lr_suggestion, "peak": peak})


def _still_improving(history, recipe) -> Finding | None:
    val = _series(history, "val_loss")
    if len(val) < 2:
        return None
    k = min(3, len(val) - 1)
    best = min(range(len(val)), key=val.__getitem__)
    drop = _rel(val[-1 - k], val[-1])
    if best != len(val) - 1 or drop <= STILL_IMPROVING:
        return None
    ev = [f"the validation loss fell {drop:.1%} over the last {k} epochs and is lowest at the "
          f"last one ({val[-1]:.3f}, epoch {len(val)})"]
    if recipe.train.early_stopping:
        ev.append("early stopping never triggered")
    lrs = _series(history, "lr")
    annealed = bool(lrs) and max(lrs) > 0 and lrs[-1] < 0.1 * max(lrs)
    if annealed:
        ev.append(f"the learning rate had annealed to {lrs[-1]:.2g} ({lrs[-1] / max(lrs):.0%} "
                  "of its peak): the last epochs improve anyway")
    big = drop > 3 * STILL_IMPROVING and not annealed   # more epochs would clearly pay off
    return Finding("still_improving", "Still improving when training ended", ev,
                   0.7 if big else 0.4, alarming=big)


def _gap_note(history, summary) -> Finding | None:
    gap = _final_gap(summary, history)
    if gap is None or gap <= GAP:
        return None
    final = (summary.get("metrics") or {}).get("final") or {}
    tr, va = final.get("train_accuracy"), final.get("val_accuracy")
    numbers = f" ({tr:.3f} vs {va:.3f})" if isinstance(tr, float) and isinstance(va, float) \
        else ""
    return Finding("generalization_gap", "Generalization gap",
                   [f"training accuracy is {100 * gap:.1f} points above validation "
                    f"accuracy{numbers}, although the validation loss did not rise"],
                   0.4, alarming=False, data={"gap": gap})


def _schedule_high(history, recipe) -> Finding | None:
    lrs, val = _series(history, "lr"), _series(history, "val_loss")
    if len(lrs) < 4 or len(val) < 4 or recipe.schedule.name == "performance":
        return None
    peak = max(lrs)
    if peak <= 0 or lrs[-1] < 0.5 * peak:
        return None
    tail = val[len(val) // 2:]
    turns = sum(1 for a, b, c in zip(tail, tail[1:], tail[2:], strict=False)
                if (b - a) * (c - b) < 0)
    spread = (max(tail) - min(tail)) / max(abs(statistics.fmean(tail)), 1e-12)
    if turns < 2 or spread < 0.01:
        return None
    return Finding("schedule_ended_high", "The learning rate ended too high",
                   [f"the learning rate ended at {lrs[-1]:.3g} ({lrs[-1] / peak:.0%} of its peak "
                    f"{peak:.3g}) under schedule '{recipe.schedule.name}'",
                    f"the validation loss changed direction {turns}× over the last "
                    f"{len(tail)} epochs"], 0.6)


def find_problems(history: Sequence[dict[str, Any]], summary: dict[str, Any], recipe: Any,
                  diagnosis: dict[str, Any] | None = None, *, lr_suggestion: float | None = None,
                  diagnosis_source: str = "fit") -> list[Finding]:
    """Every finding the run supports, in :data:`PRIORITY` order.

    Args:
        history: the run's epoch rows (``history.json``).
        summary: its ``summary.json``.
        recipe: its :class:`~trainwell.recipe.Recipe`.
        diagnosis: a gradient-health verdict as data (``Diagnosis.to_dict()``), if any.
        lr_suggestion: the LR finder's suggestion for this recipe, if measured (it decides
            ``lr_too_low``).
        diagnosis_source: ``"fit"`` (probes of the run itself) or ``"probe"`` (a short probe
            run from fresh weights: a little less confidence).

    Example:
        >>> [f.key for f in find_problems(history, summary, recipe)]   # doctest: +SKIP
        ['overfitting']
    """
    found: list[Finding] = []
    high = _lr_too_high(history, summary, diagnosis)
    found += [high] if high else []
    found += _gradient_findings(diagnosis, diagnosis_source)
    for f in (_selu(recipe), _early_stopping(history, summary, recipe)):
        found += [f] if f else []
    if high is None:   # with an unstable learning rate the curves say nothing about fit
        over = _overfitting(history, summary)
        curves = [over] if over else [_underfitting(history, summary), _gap_note(history, summary)]
        curves += [_lr_too_low(history, recipe, lr_suggestion)]
        if not any(f is not None and f.key == "underfitting" for f in curves):
            curves.append(_still_improving(history, recipe))
        found += [f for f in curves if f]
    sched = _schedule_high(history, recipe)
    found += [sched] if sched else []
    if high is not None:   # one divergence is reported once, as the learning rate
        found = [f for f in found if not (f.key == "exploding_gradients"
                                          and summary.get("status") == "diverged")]
    found.sort(key=lambda f: (not f.alarming, PRIORITY.index(f.key)))
    return found
