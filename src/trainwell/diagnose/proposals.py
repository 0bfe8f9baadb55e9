"""From findings to at most three changes of the recipe, each tied to the chapter's guideline.

Every finding has a short list of remedies, in the order the chapter (Géron, *Hands-On
Machine Learning*, ch. 11: the Practical Guidelines, Tables 11-3 and 11-4) would try them. The
proposals are the first remedies of the findings in priority order that change the recipe
(a remedy whose values the recipe already has is skipped) — at most one per finding first,
then the next remedies, up to ``limit``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainwell.diagnose.advice import Finding

__all__ = ["Proposal", "propose", "GUIDELINES"]

#: The chapter's guidelines the proposals cite (short names → the guideline in words).
GUIDELINES = {
    "lower_lr": "a lower learning rate: train about 10× below the rate where the loss turns "
                "up (LR finder)",
    "higher_lr": "find the learning rate empirically: the LR finder's suggestion",
    "clipping": "gradient clipping against exploding gradients (Keras clipnorm=1.0)",
    "he_elu": "He initialization + a nonsaturating activation (ReLU family/ELU; Table 11-1, "
              "Table 11-3)",
    "batch_norm": "batch normalization (Table 11-3: batch norm if deep)",
    "leaky": "leaky ReLU / ELU: units that cannot die",
    "selu": "self-normalizing network (Table 11-4): LeCun init, SELU, no normalization, "
            "standardized inputs, alpha dropout",
    "patience": "early stopping with enough patience (Table 11-3: early stopping)",
    "dropout": "dropout 10–50 %: increase the rate if the model overfits (MC dropout later)",
    "less_dropout": "decrease the dropout rate if the model underfits",
    "weight_decay": "weight decay if needed (Table 11-3) / ℓ2 regularization",
    "max_norm": "max-norm regularization (‖w‖₂ ≤ r for each unit)",
    "early_stopping": "early stopping: stop when the validation error reaches its minimum",
    "wider": "a wider network: more neurons per layer (ramp up until it overfits, then "
             "regularize)",
    "narrower": "a narrower network: fewer neurons per layer",
    "more_epochs": "enough iterations, and early stopping to end them",
    "onecycle": "1cycle scheduling (Table 11-3: performance scheduling or 1cycle)",
}


@dataclass
class Proposal:
    """One change to try.

    Attributes:
        title: what to do, in words.
        guideline: the chapter's guideline it comes from.
        sets: the change as ``--set`` values (``section.field=value``).
        diff: ``(field, old, new)`` for each field it changes.
        addresses: the keys of the findings it answers.
    """

    title: str
    guideline: str
    sets: list[str]
    diff: list[tuple[str, Any, Any]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)

    def set_args(self) -> str:
        """``--set a=1 --set b=2`` (shell-quoted where needed)."""
        import shlex

        return " ".join(f"--set {shlex.quote(s)}" for s in self.sets)

    def diff_text(self) -> str:
        """The recipe diff, one ``- field = old`` / ``+ field = new`` pair per field."""
        lines = []
        for name, old, new in self.diff:
            lines += [f"- {name} = {_value_text(old)}", f"+ {name} = {_value_text(new)}"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "guideline": self.guideline, "sets": self.sets,
                "diff": [{"field": n, "old": o, "new": v} for n, o, v in self.diff],
                "addresses": self.addresses}


def _value_text(v: Any) -> str:
    """A recipe value as it reads in TOML."""
    if v is None:
        return "(unset)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    return repr(v)


def _num(x: float) -> str:
    return f"{x:.3g}"


def _lr_sets(recipe: Any, lr: float) -> list[str]:
    sets = [f"optimizer.lr={_num(lr)}"]
    if recipe.schedule.name == "onecycle" and recipe.schedule.max_lr is not None:
        sets.append(f"schedule.max_lr={_num(lr)}")
    return sets


def _peak(recipe: Any) -> float:
    s = recipe.schedule
    if s.name == "onecycle" and isinstance(s.max_lr, float):
        return s.max_lr
    return recipe.optimizer.lr


Remedy = Callable[[Any, Finding], tuple[str, str, list[str]] | None]


def _lower_lr(r, f):
    lr = _peak(r) / 10
    return f"Lower the learning rate 10× (to {_num(lr)})", "lower_lr", _lr_sets(r, lr)


def _clip(r, f):
    return "Clip each gradient tensor's norm to 1", "clipping", ["optimizer.clip_norm=1.0"]


def _he_elu(r, f):
    if r.model.activation in ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "mish",
                              "prelu", "rrelu") and r.model.init in ("auto", "he", "lecun"):
        return None
    return ("He initialization with ELU", "he_elu",
            ["model.activation=elu", "model.init=auto"])


def _batch_norm(r, f):
    if r.model.activation == "selu":
        return None
    return "Batch normalization before each activation", "batch_norm", ["model.batch_norm=before"]


def _leaky(r, f):
    return "Leaky ReLU instead of ReLU", "leaky", ["model.activation=leaky_relu"]


def _selu_fix(r, f):
    sets = []
    if r.model.batch_norm != "none":
        sets.append("model.batch_norm=none")
    if r.model.init not in ("auto", "lecun"):
        sets.append("model.init=auto")
    if not r.data.standardize:
        sets.append("data.standardize=true")
    if r.regularization.dropout_kind == "standard":
        sets.append("regularization.dropout_kind=auto")
    return "Let the SELU network self-normalize", "selu", sets


def _patience(r, f):
    return "Early stopping with patience 10", "patience", ["train.patience=10"]


def _dropout(r, f):
    d = r.regularization.dropout
    if d >= 0.5:
        return None
    new = 0.2 if d < 0.2 else round(min(0.5, d + 0.1), 2)
    return f"Dropout {new:g} after each hidden layer", "dropout", [f"regularization.dropout={new:g}"]


def _weight_decay(r, f):
    if r.optimizer.name == "adamw":
        wd = r.optimizer.weight_decay
        new = 0.01 if wd <= 0 else wd * 3
        return f"Weight decay {_num(new)}", "weight_decay", [f"optimizer.weight_decay={_num(new)}"]
    new = 1e-4 if r.regularization.l2 <= 0 else r.regularization.l2 * 3
    return f"ℓ2 regularization {_num(new)}", "weight_decay", [f"regularization.l2={_num(new)}"]


def _max_norm(r, f):
    if r.regularization.max_norm > 0:
        return None
    return "Max-norm r = 1 on each unit's weights", "max_norm", ["regularization.max_norm=1.0"]


def _early_stopping_on(r, f):
    if r.train.early_stopping:
        return None
    return "Early stopping on the validation loss", "early_stopping", \
        ["train.early_stopping=true"]


def _wider(r, f):
    hidden = [2 * h for h in r.model.hidden]
    return (f"A wider network: hidden {hidden}", "wider",
            [f"model.hidden=[{', '.join(map(str, hidden))}]"])


def _narrower(r, f):
    hidden = [max(1, h // 2) for h in r.model.hidden]
    return (f"A narrower network: hidden {hidden}", "narrower",
            [f"model.hidden=[{', '.join(map(str, hidden))}]"])


def _less_dropout(r, f):
    d = r.regularization.dropout
    if d <= 0:
        return None
    new = round(max(0.0, d - 0.1), 2)
    return f"Less dropout ({new:g})", "less_dropout", [f"regularization.dropout={new:g}"]


def _higher_lr(r, f):
    lr = f.data.get("suggestion") or 3 * _peak(r)
    return (f"Raise the learning rate to {_num(lr)}", "higher_lr", _lr_sets(r, lr))


def _more_epochs_unless_plateau(r, f):
    return None if f.data.get("plateau") else _more_epochs(r, f)


def _more_epochs(r, f):
    n = 2 * r.train.epochs
    return f"Train twice as long ({n} epochs)", "more_epochs", [f"train.epochs={n}"]


def _onecycle(r, f):
    if r.schedule.name == "onecycle":
        return None
    return "1cycle schedule", "onecycle", ["schedule.name=onecycle"]


_REMEDIES: dict[str, list[Remedy]] = {
    "lr_too_high": [_lower_lr, _clip, _onecycle],
    "exploding_gradients": [_clip, _lower_lr, _batch_norm],
    "vanishing_gradients": [_he_elu, _batch_norm],
    "saturated_units": [_he_elu, _batch_norm],
    "dead_units": [_leaky, _lower_lr],
    "selu_not_self_normalizing": [_selu_fix],
    "early_stopping_too_early": [_patience],
    # Table 11-3: early stopping first, weight decay if needed; then dropout and max-norm
    "overfitting": [_early_stopping_on, _dropout, _weight_decay, _max_norm, _narrower],
    "underfitting": [_less_dropout, _wider, _more_epochs_unless_plateau],
    "lr_too_low": [_higher_lr, _onecycle],
    "still_improving": [_more_epochs],
    "schedule_ended_high": [_onecycle],
    "generalization_gap": [_dropout, _weight_decay, _max_norm],
}


def propose(findings: Sequence[Finding], recipe: Any, *, limit: int = 3) -> list[Proposal]:
    """At most ``limit`` changes answering the alarming findings, most important first
    (the notes' remedies when no finding is alarming: a healthy run can still be improved).

    Each finding's first remedy that changes the recipe comes first (in the findings'
    order), then second remedies, and so on; the same change is proposed once, naming every
    finding it answers.
    """
    from trainwell.config import apply_overrides

    current = recipe.flat()
    picked: list[Proposal] = []
    by_sets: dict[tuple[str, ...], Proposal] = {}
    chosen = [f for f in findings if f.alarming] or list(findings)   # notes when all is well
    queues = [(f, list(_REMEDIES.get(f.key, []))) for f in chosen]
    while len(picked) < limit and any(q for _, q in queues):
        for f, queue in queues:
            while queue:
                made = queue.pop(0)(recipe, f)
                if made is None:
                    continue
                title, guideline, sets = made
                try:
                    changed = apply_overrides(recipe, sets).flat()
                except Exception:   # a remedy the recipe cannot take: skip it
                    continue
                diff = [(k, current[k], changed[k]) for k in current
                        if k != "name" and not _same(current[k], changed[k])]
                if not diff:
                    continue
                key = tuple(sorted(sets))
                if key in by_sets:
                    if f.key not in by_sets[key].addresses:
                        by_sets[key].addresses.append(f.key)
                    continue
                p = Proposal(title, GUIDELINES[guideline], sets, diff, [f.key])
                by_sets[key] = p
                picked.append(p)
                break
            if len(picked) >= limit:
                break
    return picked


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b
