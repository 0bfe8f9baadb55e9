"""Draw a run's figures in a second process, so that ``trainwell fit`` does not wait for them.

Importing matplotlib and drawing the learning curves and the confusion matrix cost about a
second of CPU, a third of a short run. ``trainwell fit`` starts this worker first thing: it
imports matplotlib while the command imports torch and trains, and draws each figure as soon
as its data exists, while the command evaluates and writes the run's other files. The
figures are the same files the command would draw itself (the same functions draw them).

Any trouble (the worker cannot start, dies, answers an error or takes over a minute) and the
figures it did not finish are drawn in this process instead: the run directory never lacks
one. Without a worker (the Python API, a process that already imported matplotlib, a DDP
rank other than 0) :func:`draw` simply draws in this process.

Protocol: one JSON line per job on the worker's stdin, ``{"id", "fn", "args", "kwargs"}``; one
JSON line per job on its stdout, ``{"id", "ok", "error"}``. The worker ends at end of input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FIGURES", "FigureWorker", "start_figure_worker", "stop_figure_worker", "draw",
           "finish_figures", "active_worker"]

#: how long the command waits for the worker's figures before drawing them itself
TIMEOUT_S = 60.0


def _figures() -> dict[str, Callable[..., Any]]:
    from trainwell.report.plots import plot_confusion_matrix, plot_learning_curves

    return {"learning_curves": plot_learning_curves, "confusion_matrix": plot_confusion_matrix}


FIGURES = ("learning_curves", "confusion_matrix")


class FigureWorker:
    """A child process that draws figures sent to it; see the module docstring."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "trainwell.report.figure_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1)
        self._jobs: dict[int, tuple[str, list, dict]] = {}
        self._answers: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:  # ends when the worker exits
            try:
                answer = json.loads(line)
                with self._lock:
                    self._answers[int(answer["id"])] = answer
            except (ValueError, KeyError, TypeError):
                continue

    def submit(self, fn: str, *args: Any, **kwargs: Any) -> None:
        """Send one figure; it is drawn while this process goes on."""
        job_id = len(self._jobs)
        self._jobs[job_id] = (fn, list(args), dict(kwargs))
        try:
            self._proc.stdin.write(json.dumps({"id": job_id, "fn": fn, "args": list(args),
                                               "kwargs": kwargs}, default=str) + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):  # the worker is gone: finish() draws it here
            pass

    def finish(self, timeout: float = TIMEOUT_S) -> list[str]:
        """Wait for every figure sent; draw here any the worker did not draw. Returns the
        names of the figures drawn here (empty when the worker drew them all)."""
        pending = self._wait(timeout)
        redone = []
        for job_id in pending:
            fn, args, kwargs = self._jobs[job_id]
            _figures()[fn](*args, **kwargs)
            redone.append(fn)
        with self._lock:
            self._answers.clear()
        self._jobs.clear()
        return redone

    def _wait(self, timeout: float) -> list[int]:
        import time

        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                done = {i for i, a in self._answers.items() if a.get("ok")}
                answered = set(self._answers)
            missing = [i for i in self._jobs if i not in answered]
            if not missing or self._proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(timeout=0.5 if missing else 0)
                with self._lock:
                    done = {i for i, a in self._answers.items() if a.get("ok")}
                return [i for i in self._jobs if i not in done]
            time.sleep(0.005)

    def close(self) -> None:
        """End the worker (end of input; killed if it does not exit promptly)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_active: FigureWorker | None = None


def active_worker() -> FigureWorker | None:
    """The worker this process sends figures to, if any."""
    return _active


def start_figure_worker() -> FigureWorker | None:
    """Start the worker for this process (``trainwell fit`` does, before importing torch).

    None, drawing in this process, when matplotlib is already imported here (drawing is then
    cheap), in a DDP rank other than 0, in a frozen application (no ``python -m``), or when
    the worker cannot start.
    """
    global _active
    if _active is not None:
        return _active
    if "matplotlib" in sys.modules or os.environ.get("RANK", "0") != "0" \
            or getattr(sys, "frozen", False):
        return None
    try:
        _active = FigureWorker()
    except (OSError, ValueError):
        _active = None
    return _active


def stop_figure_worker() -> None:
    """Draw whatever is still pending, then end the worker."""
    global _active
    worker, _active = _active, None
    if worker is not None:
        try:
            worker.finish()
        finally:
            worker.close()


def draw(fn: str, *args: Any, **kwargs: Any) -> None:
    """Draw figure ``fn`` (a name of :data:`FIGURES`) with these arguments: in the worker
    when one runs (done by :func:`finish_figures`), else here and now."""
    if fn not in FIGURES:
        raise ValueError(f"unknown figure {fn!r}; expected one of {FIGURES}")
    if _active is not None:
        _active.submit(fn, *args, **kwargs)
    else:
        _figures()[fn](*args, **kwargs)


def finish_figures() -> None:
    """Return once every figure sent to the worker is on disk (drawn here if need be)."""
    if _active is not None:
        _active.finish()


def _serve() -> None:
    """The worker: import matplotlib now, then draw each job read from stdin."""
    import signal

    # Ctrl-C reaches the whole process group; the command then saves its run and still
    # wants its figures. The worker ends when the command closes its input (or dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    figures = _figures()
    from matplotlib import figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401 - the import is the point

    for line in sys.stdin:
        answer: dict[str, Any] = {"id": None, "ok": False}
        try:
            job = json.loads(line)
            answer["id"] = job["id"]
            figures[job["fn"]](*job["args"], **job["kwargs"])
            answer["ok"] = True
        except Exception as exc:  # any failure: the command draws this figure itself
            answer["error"] = f"{type(exc).__name__}: {exc}"
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
