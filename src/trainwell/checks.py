"""The checks every layer shares: is this a finite number, an integer, a rate, in range?

One rule each, one wording each, so the recipe, the Python API and the CLI refuse the same
values with the same sentence (``field: received …; expected …``,
:class:`~trainwell.errors.ConfigError`). The recipe schema states the same bounds with pydantic;
tests/test_checks.py holds the two to each other.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["is_number", "is_integer", "number", "integer", "rate", "positive"]


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
