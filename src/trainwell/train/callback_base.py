"""Callbacks: a small, named set of events around the training loop, run in a known order.

Events (``t`` is the :class:`~trainwell.train.Trainer`):

=============================  ==========================================================
``on_fit_start(t)``            after validation of the inputs, before the first step
``on_epoch_start(t, epoch)``   epoch is 1-based (also called when resuming mid-epoch)
``on_batch_start(t, step)``    step is the 0-based global index of the step about to run
``on_after_backward(t, step)`` gradients are ready, before clipping and the optimizer step
``on_batch_end(t, step)``      after the optimizer step, max-norm and the schedule update
                               (``t.step == step + 1``)
``on_validation_end(t, epoch, logs)``  validation metrics are in ``logs``
``on_epoch_end(t, epoch, logs)``       the epoch's record is in ``t.history``
``on_fit_end(t)``              always, also after an early stop or a divergence
``on_exception(t, exc)``       an exception (including KeyboardInterrupt) escapes ``fit``
=============================  ==========================================================

Callbacks with a lower ``order`` run first: :class:`NanGuard` (-100), user callbacks (0),
:class:`EarlyStopping` (10), :class:`HistoryLogger` (50), :class:`ProgressCallback` (90),
``ModelCheckpoint`` (100, last, so it saves the state the others just updated).
Only the events a callback overrides are dispatched, so an unused event costs nothing.

What runs when training stops early: setting ``t.stop_training`` in a batch event ends the
epoch after that batch; the epoch is still validated, recorded and ``on_epoch_end`` runs;
then ``on_fit_end`` runs (EarlyStopping restores the best weights there). Nothing deletes a
checkpoint: after a divergence the last good checkpoint stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["Callback", "CallbackList", "CancelStep", "EVENTS"]

EVENTS = ("on_fit_start", "on_epoch_start", "on_batch_start", "on_after_backward",
          "on_batch_end", "on_validation_end", "on_epoch_end", "on_fit_end", "on_exception")


class CancelStep(Exception):  # noqa: N818 - a signal, like fastai's CancelStepException
    """Raised by an ``on_after_backward`` callback to skip this batch's update.

    The gradients have been computed but nothing is applied: no clipping, no optimizer step,
    no max-norm, and the schedule does not advance. The batch still counts (its loss and
    metrics, ``on_batch_end``); set ``t.stop_training`` as well to end the run.
    :class:`NanGuard` raises it when the gradients are not finite.
    """


class Callback:
    """Base class: override the events you need; ``order`` sets the sequence (lower first).

    ``state_dict()`` / ``load_state_dict()`` carry what must survive a resume; checkpoints
    store it under :attr:`state_key` (the class name, numbered when repeated).

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, t, epoch, logs):
        ...         print(epoch, round(logs["loss"], 3))
    """

    order: int = 0
    #: Whether a step must run op by op (not as one compiled graph, ``compile = true``) so that
    #: this callback can look inside it: ``True``, ``False``, or a method
    #: ``needs_eager_step(step) -> bool`` for a callback that looks inside some steps only.
    #: ``None`` (default): every step, when the callback handles ``on_after_backward``.
    needs_eager_step: Any = None

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def on_fit_start(self, t) -> None: ...
    def on_epoch_start(self, t, epoch: int) -> None: ...
    def on_batch_start(self, t, step: int) -> None: ...
    def on_after_backward(self, t, step: int) -> None: ...
    def on_batch_end(self, t, step: int) -> None: ...
    def on_validation_end(self, t, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_epoch_end(self, t, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_fit_end(self, t) -> None: ...
    def on_exception(self, t, exc: BaseException) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class CallbackList:
    """Dispatches each event to the callbacks that override it, sorted by ``order``.

    For every event the list of interested callbacks is computed once, so the per-step cost
    of an event nobody uses is one empty-tuple check.
    """

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks: list[Callback] = sorted(callbacks, key=lambda c: c.order)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError("callbacks", cb, "instances of trainwell.train.Callback")
        self.by_event: dict[str, tuple[Callback, ...]] = {
            ev: tuple(cb for cb in self.callbacks
                      if getattr(type(cb), ev) is not getattr(Callback, ev))
            for ev in EVENTS
        }
        # Attribute access in the hot loop: the per-step events as plain tuples.
        self.batch_start = self.by_event["on_batch_start"]
        self.after_backward = self.by_event["on_after_backward"]
        self.batch_end = self.by_event["on_batch_end"]
        # The callbacks that may need a step op by op (see Callback.needs_eager_step).
        self.eager_step = tuple(cb for cb in self.callbacks if cb in self.after_backward
                                or getattr(cb, "needs_eager_step", None) not in (None, False))
        self.keys = self._stable_keys()

    def _stable_keys(self) -> list[str]:
        keys, seen = [], {}
        for cb in self.callbacks:
            k = cb.state_key
            seen[k] = seen.get(k, 0) + 1
            keys.append(k if seen[k] == 1 else f"{k}#{seen[k]}")
        return keys

    def call(self, event: str, *args: Any) -> None:
        for cb in self.by_event[event]:
            getattr(cb, event)(*args)

    def state_dict(self) -> dict[str, Any]:
        return {k: cb.state_dict() for k, cb in zip(self.keys, self.callbacks, strict=True)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, cb in zip(self.keys, self.callbacks, strict=True):
            if k in state:
                cb.load_state_dict(state[k])

    def __iter__(self):
        return iter(self.callbacks)
