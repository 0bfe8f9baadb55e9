"""Errors trainwell raises for things a user can fix, and the warnings it gives.

The CLI prints the message of a :class:`TrainwellError` as one line and exits with code 2,
without a traceback: the message itself must say what was wrong and what is accepted.
Warnings are real :mod:`warnings` of a :class:`TrainwellWarning` category, so Python users
can filter them (``warnings.simplefilter("ignore", TrainwellWarning)``); the CLI prints each
as one ``warning: <message>`` line.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["TrainwellError", "ConfigError", "DataError", "CheckpointError", "TrainwellWarning",
           "TrainwellRuntimeWarning", "CheckpointFallbackWarning"]


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


class TrainwellWarning(Warning):
    """Base class of trainwell's warnings: something works, but not as the user likely meant."""


class TrainwellRuntimeWarning(TrainwellWarning, RuntimeWarning):
    """Training goes on differently than asked (e.g. eager after a failed ``torch.compile``)."""


class CheckpointFallbackWarning(TrainwellRuntimeWarning):
    """A damaged checkpoint was skipped and the previous one (``*.prev.pt``) loaded instead."""
