"""Callbacks: the events and their order (trainwell.train.callback_base), early stopping here,
and the built-in callbacks re-exported from their modules."""

from __future__ import annotations

import math
import warnings

import torch

from trainwell.errors import ConfigError, TrainwellRuntimeWarning
from trainwell.train.callback_base import EVENTS, Callback, CallbackList, CancelStep
from trainwell.train.history import _maximized
from trainwell.train.logging_callbacks import HistoryLogger, ProgressCallback
from trainwell.train.nanguard import NanGuard

__all__ = ["Callback", "CallbackList", "CancelStep", "EarlyStopping", "NanGuard",
           "HistoryLogger", "ProgressCallback", "EVENTS"]


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    Improvement means ``value < best - min_delta`` (mode ``min``) or ``value > best +
    min_delta`` (mode ``max``); ``mode="auto"`` maximizes accuracy-like names and minimizes
    the rest. With ``restore_best`` (default) the best epoch's weights are kept in memory
    (on the device) and loaded into the model when ``fit`` ends — whether it stopped early or
    ran all epochs. The state (best value, wait, best weights) is saved in checkpoints, so a
    resumed run stops and restores exactly like an uninterrupted one.

    Args:
        monitor: a key of the epoch logs (default ``"val_loss"``; falls back to ``"loss"``
            with a warning when there is no validation data).
        patience: epochs without improvement before stopping (default 10).
        min_delta: minimum change that counts as an improvement (default 0.0).
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        restore_best: load the best weights at the end of ``fit`` (default True).

    Example:
        >>> es = EarlyStopping(patience=5)
        >>> # Trainer(model, callbacks=[es]).fit(x, y, validation_data=(xv, yv), epochs=100)
    """

    order = 10

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True):
        if mode not in ("auto", "min", "max"):
            raise ConfigError("train.mode", mode, ["auto", "min", "max"])
        if not isinstance(patience, int) or patience < 0:
            raise ConfigError("train.patience", patience, "an integer >= 0")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ConfigError("train.min_delta", min_delta, "a number >= 0")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode, self.restore_best = mode, restore_best
        self.maximize = mode == "max" or (mode == "auto" and _maximized(monitor))
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._warned = False

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.maximize:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, t, epoch, logs):
        key = self.monitor
        if key not in logs and key.startswith("val_") and key[4:] in logs:
            key = key[4:]  # no validation data: monitor the training metric
            if not self._warned:
                self._warned = True
                warnings.warn(f"EarlyStopping monitors {self.monitor!r} but there is no "
                              f"validation data; monitoring {key!r} instead",
                              TrainwellRuntimeWarning,
                              stacklevel=2)
        value = logs.get(key)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best:
                self.best_weights = _copy_state(t.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            t.stop_training = True
            if t.status == "running":
                t.status = "stopped"

    def on_fit_end(self, t):
        if self.restore_best and self.best_weights is not None:
            t.model.load_state_dict(self.best_weights)
            if self.best_epoch < t.epoch:  # the progress output says so
                t.restored_epoch = self.best_epoch

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_weights = state.get("best_weights")
