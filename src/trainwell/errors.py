"""Errors trainwell raises for things a user can fix.

The CLI prints the message of a :class:`TrainwellError` as one line and exits with code 2,
without a traceback: the message itself must say what was wrong and what is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["TrainwellError", "ConfigError", "DataError", "CheckpointError"]


class TrainwellError(Exception):
    """Base class of the errors a user can act on (bad input, missing data, bad files)."""


def _describe_accepted(accepted: str | Iterable[object]) -> str:
    if isinstance(accepted, str):
        return accepted
    names = [str(a) for a in accepted]
    return "one of " + ", ".join(names) if names else "nothing"


class ConfigError(TrainwellError, ValueError):
    """A value the user gave is not accepted.

    Args:
        field: dotted path of the field, e.g. ``"model.activation"``.
        value: the value received.
        accepted: what is accepted: a sentence, or a list of valid names.

    Example:
        >>> str(ConfigError("optimizer.lr", -1, "a number > 0"))
        'optimizer.lr: received -1; expected a number > 0'
    """

    def __init__(self, field: str, value: object, accepted: str | Iterable[object]):
        self.field = field
        self.value = value
        self.accepted = _describe_accepted(accepted)
        super().__init__(f"{field}: received {value!r}; expected {self.accepted}")


class DataError(TrainwellError):
    """Data that cannot be used: missing files, NaN features, labels out of range, bad shapes."""


class CheckpointError(TrainwellError):
    """A checkpoint or saved model that is missing, corrupt or unsafe to load."""
