"""Keras-style ``fit`` arguments of the Trainer: ``validation_split`` and ``verbose``."""

from __future__ import annotations

import math
from typing import Any

from trainwell.errors import ConfigError, DataError

__all__ = ["split_validation", "use_progress"]

_VERBOSE = ("auto", 0, 1, 2)


def split_validation(trainer: Any, x: Any, y: Any, split: Any, validation_data: Any,
                     sample_weight: Any) -> tuple[Any, Any, Any, Any]:
    """Hold out the last ``split`` fraction of ``(x, y)`` (before shuffling), as Keras does.

    Returns ``(x, y, validation_data, sample_weight)``; ``validation_data`` given explicitly
    wins over the split (as in Keras).
    """
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not (
            math.isfinite(split) and 0 <= split < 1):
        raise ConfigError("validation_split", split, "a fraction in [0, 1) (0 = none)")
    if type(x).__name__ == "StreamedPart":  # read from disk per batch: no tensor to slice
        if split and validation_data is None:
            raise ConfigError("validation_split", split,
                              "0 for streamed data (hold out a folder split instead)")
        return x, y, validation_data, sample_weight
    x = trainer._as_tensor(x, "train.x")
    y = trainer._as_tensor(y, "train.y")
    if not split or validation_data is not None:
        return x, y, validation_data, sample_weight
    n = x.shape[0] if x.dim() else 0
    at = math.ceil(n * (1 - split))
    if at < 1 or at >= n or y.dim() == 0 or y.shape[0] != n:
        raise DataError(f"validation_split={split} leaves no training or no validation samples "
                        f"out of {n}")
    if sample_weight is not None:
        sample_weight = trainer._as_tensor(sample_weight, "sample_weight").reshape(-1)
        if sample_weight.shape[0] == n:
            sample_weight = sample_weight[:at]
    return x[:at], y[:at], (x[at:], y[at:]), sample_weight


def use_progress(trainer: Any, verbose: Any) -> None:
    """Add (or silence) the trainer's own :class:`ProgressCallback` for this ``fit``."""
    from trainwell.train.callbacks import CallbackList, ProgressCallback

    if isinstance(verbose, bool):
        verbose = int(verbose)
    if verbose not in _VERBOSE:
        raise ConfigError("verbose", verbose, "'auto' or 1 (progress bar and a line per epoch), "
                                              "2 (a line per epoch), 0 (silent)")
    own = trainer._auto_progress
    if any(isinstance(cb, ProgressCallback) and cb is not own for cb in trainer.callbacks):
        return  # the caller's progress callback decides
    if own is None:
        if not verbose:
            return
        own = trainer._auto_progress = ProgressCallback()
        trainer.callbacks = CallbackList([*trainer.callbacks, own])
    own.quiet = not verbose
    own.bar = verbose != 2
