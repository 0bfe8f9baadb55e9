"""Measuring a deployable model: latency per batch, file sizes, scores on labelled data."""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["measure_latency", "compare_latency", "time_rounds", "paired_ratio", "file_size",
           "compressed_size", "score"]


def _block_calls(fn: Callable[[Tensor], Tensor], x: Tensor, min_block_s: float) -> int:
    """How many calls one timed block needs to last about ``min_block_s`` (timer noise)."""
    t0 = time.perf_counter()
    fn(x)
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(1000, int(min_block_s / once)))


def time_rounds(fns: Sequence[Callable[[Tensor], Tensor]], x: Tensor, *, warmup: int = 5,
                repeats: int = 15, min_block_s: float = 0.005) -> list[list[float]]:
    """Seconds per call of each function, one value per timed round, timed alternately.

    Each function is called ``warmup`` times first (TorchScript optimizes on its first
    calls), then ``repeats`` rounds time one block of k calls of every function in turn
    (k chosen so a block lasts about ``min_block_s``); interleaving means a busy machine
    slows every function of a round alike. Runs under ``torch.inference_mode``.

    Returns:
        ``times[i][r]``: block time / k of function i in round r, in seconds.
    """
    with torch.inference_mode():
        for fn in fns:
            for _ in range(warmup):
                fn(x)
        ks = [_block_calls(fn, x, min_block_s) for fn in fns]
        times: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for i, (fn, k) in enumerate(zip(fns, ks, strict=True)):
                t0 = time.perf_counter()
                for _ in range(k):
                    fn(x)
                times[i].append((time.perf_counter() - t0) / k)
    return times


def compare_latency(fns: Sequence[Callable[[Tensor], Tensor]], x: Tensor, *, warmup: int = 5,
                    repeats: int = 15, min_block_s: float = 0.005) -> list[float]:
    """Median seconds per call of each function on the same input (see :func:`time_rounds`).

    Example:
        >>> compare_latency([model, exported], torch.randn(1024, 784))   # doctest: +SKIP
        [0.0039, 0.0021]
    """
    times = time_rounds(fns, x, warmup=warmup, repeats=repeats, min_block_s=min_block_s)
    return [statistics.median(t) for t in times]


def paired_ratio(base: Sequence[float], other: Sequence[float]) -> float:
    """Median over rounds of other/base: each round's two timings ran back to back, so load
    that comes and goes cancels out of the ratio much better than out of either median."""
    return statistics.median(o / b for b, o in zip(base, other, strict=True) if b > 0)


def measure_latency(fn: Callable[[Tensor], Tensor], x: Tensor, *, warmup: int = 5,
                    repeats: int = 15) -> float:
    """Median seconds per call of ``fn(x)`` after warm-up (see :func:`compare_latency`).

    Example:
        >>> measure_latency(model, torch.randn(1, 784))   # doctest: +SKIP
        4.1e-05
    """
    return compare_latency([fn], x, warmup=warmup, repeats=repeats)[0]


def file_size(paths: Sequence[Path]) -> int:
    """Total bytes of the files."""
    return sum(Path(p).stat().st_size for p in paths)


def compressed_size(paths: Sequence[Path]) -> int:
    """Total bytes of the files compressed with zlib (level 6): what zeros save on the wire."""
    return sum(len(zlib.compress(Path(p).read_bytes(), 6)) for p in paths)


def score(fn: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, task: str = "multiclass",
          *, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss and metrics (``task.metric_sums``) of the logits ``fn`` returns on ``(x, y)``."""
    from trainwell.tasks import get_task

    t = get_task(task)
    n = len(x)
    if n == 0:
        return {}
    sums: dict[str, Tensor] = {}
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            logits = fn(x[lo:lo + batch_size]).float()
            target = t.prepare_targets(y[lo:lo + batch_size])
            for k, v in t.metric_sums(logits, target).items():
                sums[k] = sums[k] + v.double() if k in sums else v.double()
    return {k: float(v) / n for k, v in sums.items()}   # host sync: once per evaluation
