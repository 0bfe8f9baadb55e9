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

import csv
import io
import json
import math
import os
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

import trainwell.train.distributed as distributed
from trainwell.atomic import atomic_write
from trainwell.errors import ConfigError, TrainwellRuntimeWarning
from trainwell.train.history import _maximized

__all__ = ["Callback", "CallbackList", "CancelStep", "EarlyStopping", "NanGuard",
           "HistoryLogger", "ProgressCallback", "EVENTS"]

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


class NanGuard(Callback):
    """Stop a diverging run: non-finite loss or gradients → restore good weights, say which layer.

    Every ``check_every`` steps (default 10) it computes the per-parameter gradient norms in
    one fused call and checks them and the epoch's running loss for NaN/Inf: one host sync
    per check, none in between. When they are finite it snapshots the weights (on the
    device). When they are not, the step's update is skipped; the current weights are kept
    if they are finite and gave a finite loss, else the snapshot is restored; then it sets ``t.stop_training``,
    ``t.status = "diverged"`` and ``t.divergence = {"step", "epoch", "layer", "grad_norm",
    "message"}``. The layer is where the non-finite value first appeared: the first layer
    whose output is NaN/Inf when the last batch is passed forward again (eager mode), else the
    parameter nearest the output whose gradient is non-finite (where backpropagation first
    produced it); with finite gradients (only the loss overflowed) the message says so and
    names the largest gradient norm. A loss that goes non-finite between two checks is caught
    at the epoch end from the epoch's loss; the layer is then named the same way.
    Checkpoints are never deleted; ``ModelCheckpoint`` writes no
    checkpoint of a diverged state, so the last good one stays.

    Args:
        check_every: steps between checks (1 = every step; a host sync each).
    """

    order = -100

    def __init__(self, check_every: int = 10):
        if not isinstance(check_every, int) or check_every < 1:
            raise ConfigError("train.nan_check_every", check_every, "an integer >= 1")
        self.check_every = check_every
        self._good: dict[str, torch.Tensor] | None = None
        self._names: list[str] = []
        self._params: list[torch.Tensor] = []
        self._prev_norms: list[float] | None = None
        self.divergence: dict[str, Any] | None = None
        self._last_input: Any = None
        self._hook: Any = None

    def on_fit_start(self, t):
        self._watch(t)
        self._snapshot(t)
        self._keep_last_input(t)

    def on_epoch_start(self, t, epoch):
        if len(self._params) != sum(p.requires_grad for p in t.model.parameters()):
            self._watch(t)   # layers were (un)frozen in a phase of the fit

    def _watch(self, t) -> None:
        named = [(n, p) for n, p in t.model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]

    def _keep_last_input(self, t) -> None:
        if self._hook is None and not getattr(t, "compile", False):
            # a reference to the batch in flight (no copy): replayed only on divergence
            def keep(_module, args):
                self._last_input = args[0] if args else None
            self._hook = t.model.register_forward_pre_hook(keep)

    def on_fit_end(self, t):
        self._release()

    def on_exception(self, t, exc):
        self._release()

    def _release(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._last_input = None

    def _first_non_finite_output(self, t) -> str | None:
        """Parameter name of the first layer whose output is NaN/Inf on the last batch."""
        x = self._last_input
        if not isinstance(x, torch.Tensor):
            return None
        order: list[str] = []
        found: list[str] = []
        names = {m: n for n, m in t.model.named_modules()}

        def check(module, _args, out):
            if found or not isinstance(out, torch.Tensor):
                return
            own = [n for n, _ in module.named_parameters(recurse=False)]
            if own:
                order.append(f"{names[module]}.{own[0]}".lstrip("."))
            if out.is_floating_point() and not bool(torch.isfinite(out).all()):  # host sync
                found.append(order[-1] if order else names[module])

        leaves = [m for m in t.model.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(check) for m in leaves]
        was_training = t.model.training
        t.model.eval()  # no dropout draw, no batch-norm statistics update
        try:
            with torch.no_grad():
                t.model(x)
        except Exception:
            return None
        finally:
            t.model.train(was_training)
            for h in hooks:
                h.remove()
        return found[0] if found and found[0] in self._names else None

    def _snapshot(self, t):
        state = t.model.state_dict()
        if self._good is None:
            self._good = {k: v.detach().clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                self._good[k].copy_(v)

    def needs_eager_step(self, step: int) -> bool:
        return (step + 1) % self.check_every == 0

    def on_after_backward(self, t, step):
        if (step + 1) % self.check_every == 0 and not self._check(t, step):
            raise CancelStep  # non-finite gradients: this update is not applied

    def _measure(self, t) -> tuple[list[str], list[float], bool]:
        """Names and norms of the current gradients, and whether the last loss is finite."""
        present = [(n, p.grad) for n, p in zip(self._names, self._params, strict=True)
                   if p.grad is not None]
        if present:
            norms = torch.stack(torch._foreach_norm([g for _, g in present]))
        else:
            norms = torch.zeros(0, device=t.device)
        loss = t.last_loss if t.last_loss is not None else torch.zeros(())
        loss = loss.reshape(1).to(norms if len(norms) else torch.float32)
        # under DDP: a worker's non-finite loss makes the sum non-finite on every worker, so
        # all of them decide alike (the gradients are already the same everywhere)
        loss = distributed.all_reduce_sum(loss.clone())
        values = torch.cat([loss.to(norms), norms]).tolist()
        # host sync: the line above, once per check_every steps
        return [n for n, _ in present], values[1:], math.isfinite(values[0])

    def _check(self, t, step) -> bool:
        """Whether the loss and the gradients are finite (else: diverged)."""
        names, norms, loss_finite = self._measure(t)
        if loss_finite and all(math.isfinite(v) for v in norms):
            self._prev_norms = norms
            self._snapshot(t)
            return True
        precision = getattr(t, "precision", None)
        if loss_finite and precision is not None and precision.gradients_may_overflow():
            return True  # fp16: the gradient scaler skips this step and lowers its factor
        self._diverged(t, step, names, norms, loss_finite)
        return False

    def on_epoch_end(self, t, epoch, logs):
        # Between two checks the epoch's loss can go non-finite: the gradients of the last
        # step are still in .grad, so the layer is named from them (the non-finite one, else
        # the largest norm), as at a regular check.
        if t.status != "diverged" and not math.isfinite(logs.get("loss", 0.0)):
            names, norms, loss_finite = self._measure(t)
            self._diverged(t, t.step - 1, names, norms, loss_finite)

    def _diverged(self, t, step, names, norms, loss_finite=False):
        layer, value, where = None, None, ""
        bad = [(n, v) for n, v in zip(names, norms, strict=True) if not math.isfinite(v)]
        forward = self._first_non_finite_output(t)  # before any weight is restored
        if forward is not None:
            layer, where = forward, (f"the first NaN/Inf appeared in the output of the layer "
                                    f"holding {forward!r}")
        elif bad:  # backpropagation runs from the output: the last bad one is where it began
            layer, value = bad[-1]
            where = f"gradients first became NaN/Inf in {layer!r}"
        elif names:  # finite gradients: only the loss overflowed
            i = max(range(len(names)), key=lambda j: norms[j])
            layer, value = names[i], norms[i]
            where = (f"the loss overflowed while every gradient was finite (largest gradient "
                     f"norm {value:.3g}, in {layer!r})")
        # The bad update has not been applied: keep the current weights when they are still
        # finite (the best "last good" state), else go back to the last checked snapshot.
        finite = loss_finite and all(
            bool(torch.isfinite(v).all())  # host sync: once, on divergence
            for v in t.model.state_dict().values() if v.is_floating_point())
        if not finite and self._good is not None:
            t.model.load_state_dict(self._good)
        msg = (f"training diverged at step {step} (epoch {t.epoch + 1}): the loss or the "
               f"gradients became NaN/Inf")
        if where:
            msg += f"; {where}"
        msg += ("; the last good weights were restored. Try a lower learning rate, gradient "
                "clipping or batch norm.")
        self.divergence = {"step": int(step), "epoch": int(t.epoch + 1), "layer": layer,
                           "grad_norm": value, "message": msg}
        t.divergence = self.divergence
        t.status = "diverged"
        t.stop_training = True


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text)


class HistoryLogger(Callback):
    """Rewrite the history as CSV and JSON after every epoch (atomically: temp file + rename).

    Args:
        path_csv: CSV path (one row per epoch, a column per key); ``None`` to skip.
        path_json: JSON path (a list of per-epoch dicts); ``None`` to skip.
    """

    order = 50

    def __init__(self, path_csv: str | os.PathLike | None = "history.csv",
                 path_json: str | os.PathLike | None = "history.json"):
        self.path_csv = Path(path_csv) if path_csv else None
        self.path_json = Path(path_json) if path_json else None

    def on_epoch_end(self, t, epoch, logs):
        self.write(t.history)

    def on_fit_end(self, t):
        self.write(t.history)

    def write(self, history) -> None:
        if not distributed.is_main():  # under DDP only rank 0 writes files
            return
        rows = history.to_list()
        if self.path_json is not None:
            self.path_json.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(self.path_json, json.dumps(rows, indent=1, allow_nan=True))
        if self.path_csv is not None:
            self.path_csv.parent.mkdir(parents=True, exist_ok=True)
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=history.keys(), extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            _atomic_write_text(self.path_csv, buf.getvalue())


def _has_ipywidgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class ProgressCallback(Callback):
    """A rich progress bar per epoch (step, loss, metrics, lr, ETA) and a line per epoch.

    The bar advances every ``refresh_every`` steps (a Python counter; no host sync); the
    numbers shown are those of the last finished epoch, read at the one sync per epoch. The
    bar shows in a terminal or a notebook only; in a log each epoch is one line.

    Args:
        quiet: print nothing at all (scripts, CI).
        refresh_every: steps between bar updates (default 50).
        console: a ``rich.console.Console`` (default: a new one on stderr).
        bar: show the live bar (default True); False prints the line per epoch only.
    """

    order = 90

    def __init__(self, quiet: bool = False, refresh_every: int = 50, console=None,
                 bar: bool = True):
        self.quiet = quiet
        self.refresh_every = max(1, int(refresh_every))
        self.console = console
        self.bar = bar
        self._progress = None
        self._task = None
        self._pending = 0
        self._last: dict[str, Any] = {}
        self._t0 = 0.0

    def _print(self, text: str) -> None:
        if not self.quiet and self.console is not None:
            self.console.print(text, markup=False, highlight=False)

    def on_fit_start(self, t):
        if self.quiet:
            return
        from trainwell.console import make_console

        self.console = self.console or make_console(stderr=True)
        self._t0 = time.perf_counter()
        if self.bar and not (self.console.is_jupyter and not _has_ipywidgets()):
            self._start_bar()  # in a notebook rich draws the bar with ipywidgets
        step, epoch = getattr(t, "step", 0), getattr(t, "epoch", 0)
        if step > 0 and epoch < t.epochs:
            self._print(f"resuming at epoch {epoch + 1}, step {step}")

    def _start_bar(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        # Every column but the metrics keeps its full width; the metrics text takes what is
        # left and ends in "…" on a narrow terminal (the count and time left stay readable).
        fixed = {"no_wrap": True}
        self._progress = Progress(
            TextColumn("{task.description}", table_column=Column(**fixed)),
            BarColumn(bar_width=20, table_column=Column(**fixed)),
            MofNCompleteColumn(table_column=Column(**fixed)),
            TimeElapsedColumn(table_column=Column(**fixed)),
            TimeRemainingColumn(table_column=Column(**fixed)),
            TextColumn("{task.fields[info]}", table_column=Column(
                no_wrap=True, overflow="ellipsis", ratio=1, min_width=0)),
            console=self.console, transient=True, expand=True)
        self._progress.start()

    def on_epoch_start(self, t, epoch):
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(
            f"epoch {epoch}/{t.epochs}", total=t.steps_per_epoch,
            completed=t.batch_in_epoch, info=self._info())
        self._pending = 0

    def on_batch_end(self, t, step):
        if self._progress is None:
            return
        self._pending += 1
        if self._pending >= self.refresh_every:
            self._progress.update(self._task, advance=self._pending)
            self._pending = 0

    def _info(self) -> str:
        return "  ".join(f"{k} {v:.4g}" for k, v in self._last.items()
                         if k not in ("epoch", "time", "steps") and isinstance(v, float))

    def on_epoch_end(self, t, epoch, logs):
        self._last = dict(logs)
        if self._progress is not None:
            self._progress.update(self._task, completed=t.steps_per_epoch, info=self._info())
        self._print(f"epoch {epoch}/{t.epochs}  {self._info()}  {logs.get('time', 0.0):.1f}s")

    def on_fit_end(self, t):
        self._stop()
        restored = getattr(t, "restored_epoch", None)
        if restored:
            self._print(f"restored best weights from epoch {restored}")

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def on_exception(self, t, exc):
        self._stop()
