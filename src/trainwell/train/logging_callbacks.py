"""Callbacks that write what a run did: the history as CSV/JSON and the progress on the console."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import trainwell.train.distributed as distributed
from trainwell.atomic import atomic_write
from trainwell.train.callback_base import Callback

__all__ = ["HistoryLogger", "ProgressCallback"]

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
