"""The checks every layer shares: is this a finite number, an integer, a rate, in range?

One rule each, one wording each, so the recipe, the Python API and the CLI refuse the same
values with the same sentence (``field: received …; expected …``,
:class:`~trainwell.errors.ConfigError`). The recipe schema states the same bounds with pydantic;
tests/test_checks.py holds the two to each other.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["DEVICES", "check_device", "is_number", "is_integer", "number", "integer", "rate", "positive", "Range",
           "RANGES", "check_field"]


def is_number(value: Any) -> bool:
    """A finite real number (``True``/``False`` are not numbers here)."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value))


def is_integer(value: Any) -> bool:
    """An integer (``True``/``False`` are not integers here)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def number(field: str, value: Any, ok: Callable[[float], bool] = lambda v: True,
           accepted: str = "a number") -> float:
    """``value`` as a float when it is a finite number for which ``ok`` holds.

    Example:
        >>> number("optimizer.lr", 0.1, lambda v: v > 0, "a number > 0")
        0.1
        >>> number("optimizer.lr", float("inf"), lambda v: v > 0, "a number > 0")
        Traceback (most recent call last):
        trainwell.errors.ConfigError: optimizer.lr: received inf; expected a number > 0
    """
    if not is_number(value) or not ok(value):
        raise ConfigError(field, value, accepted)
    return float(value)


def integer(field: str, value: Any, minimum: int | None = None, accepted: str | None = None
            ) -> int:
    """``value`` as an int when it is an integer ≥ ``minimum``."""
    if not is_integer(value) or (minimum is not None and value < minimum):
        text = accepted or ("an integer" if minimum is None else f"an integer >= {minimum}")
        raise ConfigError(field, value, text)
    return int(value)


def rate(field: str, value: Any) -> float:
    """A rate such as dropout: a number with 0 ≤ rate < 1."""
    return number(field, value, lambda v: 0 <= v < 1, "a number with 0 ≤ rate < 1")


def positive(field: str, value: Any) -> float:
    """A number > 0 (a learning rate, a factor)."""
    return number(field, value, lambda v: v > 0, "a number > 0")


@dataclass(frozen=True)
class Range:
    """An interval of accepted values: the library's check and the recipe schema's bounds.

    Example:
        >>> RATE.text, RATE.contains(0.0), RATE.contains(1.0)
        ('a number in [0, 1)', True, False)
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if not (is_integer(value) if self.integer else is_number(value)):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    @property
    def text(self) -> str:
        """What is accepted, in the words of every error message (``a number in [0, 1)``)."""
        noun = "an integer" if self.integer else "a number"
        lo = ("[", self.ge) if self.ge is not None else ("(", self.gt) if self.gt is not None \
            else None
        hi = ("]", self.le) if self.le is not None else (")", self.lt) if self.lt is not None \
            else None
        if lo and hi:
            return f"{noun} in {lo[0]}{_fmt(lo[1])}, {_fmt(hi[1])}{hi[0]}"
        if lo:
            return f"{noun} {'≥' if lo[0] == '[' else '>'} {_fmt(lo[1])}"
        if hi:
            return f"{noun} {'≤' if hi[0] == ']' else '<'} {_fmt(hi[1])}"
        return noun

    def bounds(self) -> dict[str, float]:
        """The bounds as pydantic ``Field`` keyword arguments (``ge``, ``gt``, ``le``, ``lt``)."""
        return {k: getattr(self, k) for k in ("ge", "gt", "le", "lt") if getattr(self, k) is not None}

    def check(self, field: str, value: Any, accepted: str | None = None) -> Any:
        """``value`` (as int or float) when it is in the range, else one ConfigError."""
        if not self.contains(value):
            raise ConfigError(field, value, accepted or self.text)
        return int(value) if self.integer else float(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


RATE = Range(ge=0, lt=1)            # dropout, momentum, β1, β2, ρ, batch-norm momentum
FRACTION = Range(gt=0, lt=1)        # a share strictly between 0 and 1
POSITIVE = Range(gt=0)
NON_NEGATIVE = Range(ge=0)          # 0 = off for penalties, clipping, max-norm
AT_LEAST_ONE = Range(ge=1)
COUNT = Range(ge=1, integer=True)
COUNT_OR_ZERO = Range(ge=0, integer=True)
SEED = Range(ge=0, le=2**63 - 1, integer=True)  # what torch.manual_seed takes

#: The accepted values of every bounded number a recipe and the library share, by recipe field.
#: The recipe schema takes its bounds from here and the library checks with the same entry, so
#: a value one accepts the other accepts too (tests/test_checks.py holds them to it).
RANGES: dict[str, Range] = {
    "model.bn_momentum": RATE,
    "model.bn_epsilon": POSITIVE,
    "model.leaky_slope": NON_NEGATIVE,
    "regularization.l1": NON_NEGATIVE,
    "regularization.l2": NON_NEGATIVE,
    "regularization.dropout": RATE,
    "regularization.input_dropout": RATE,
    "regularization.dropout_top_k": COUNT_OR_ZERO,
    "regularization.max_norm": NON_NEGATIVE,
    "optimizer.lr": POSITIVE,
    "optimizer.momentum": RATE,
    "optimizer.beta_1": RATE,
    "optimizer.beta_2": RATE,
    "optimizer.rho": RATE,
    "optimizer.epsilon": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.initial_accumulator": NON_NEGATIVE,
    "optimizer.clip_value": NON_NEGATIVE,
    "optimizer.clip_norm": NON_NEGATIVE,
    "optimizer.clip_global_norm": NON_NEGATIVE,
    "schedule.power": POSITIVE,
    "schedule.factor": FRACTION,
    "schedule.patience": COUNT_OR_ZERO,
    "schedule.min_lr": NON_NEGATIVE,
    "schedule.min_delta": NON_NEGATIVE,
    "schedule.start_div": AT_LEAST_ONE,
    "schedule.final_div": AT_LEAST_ONE,
    "schedule.warmup_frac": FRACTION,
    "schedule.anneal_frac": RATE,
    "schedule.max_momentum": RATE,
    "schedule.min_momentum": RATE,
    "data.train_limit": COUNT_OR_ZERO,
    "augment.crop_padding": COUNT_OR_ZERO,
    "augment.noise_std": NON_NEGATIVE,
    "train.epochs": COUNT,
    "train.batch_size": COUNT,
    "train.seed": SEED,
    "train.patience": COUNT_OR_ZERO,
    "train.min_delta": NON_NEGATIVE,
    "train.checkpoint_every_epochs": COUNT_OR_ZERO,
    "train.checkpoint_every_steps": COUNT_OR_ZERO,
    "train.diagnose_every": COUNT,
    "train.label_smoothing": RATE,
}


def check_field(field: str, value: Any) -> Any:
    """Check ``value`` against the range of recipe field ``field`` (see :data:`RANGES`).

    Example:
        >>> check_field("model.bn_momentum", 0)
        0.0
        >>> check_field("model.bn_momentum", 1)
        Traceback (most recent call last):
        trainwell.errors.ConfigError: model.bn_momentum: received 1; expected a number in [0, 1)
    """
    return RANGES[field].check(field, value)


#: The devices every command and the recipe's ``train.device`` accept, in words.
DEVICES = "auto, cpu, cuda, cuda:N or mps"


def check_device(field: str, value: Any) -> str:
    """``value`` lower-cased when it names a device the way trainwell accepts (:data:`DEVICES`);
    whether that device exists here is checked when training starts."""
    v = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(v, str) or re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is None:
        raise ConfigError(field, value, DEVICES)
    return v
