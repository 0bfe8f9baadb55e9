"""Shared pieces of the speed benchmarks: the workloads, the data file, the result line.

Every contestant is a separate script run in its own process (one after another, by
``benchmarks/run.py``) so that no framework warms caches or threads for another. Each one
prints exactly one JSON line: ``{"name": ..., "epoch_times": [...], ...}``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One benchmark problem: a dense network, its optimizer and the data shape."""

    name: str
    n_inputs: int
    hidden: tuple[int, ...]
    n_classes: int
    activation: str  # selu | swish
    init: str  # lecun | he
    optimizer: str  # sgd | nadam
    lr: float
    batch_size: int
    n_samples: int
    batch_norm: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        d = json.loads(text)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


# The chapter's model A: 5 dense SELU layers on the 8-class Fashion-MNIST task (~44k images).
MODEL_A = Workload("model_a", 784, (300, 100, 50, 50, 50), 8, "selu", "lecun", "sgd", 1e-3, 32, 44000)
# The chapter's CIFAR-10 exercise network: 20 hidden layers of 100 Swish units, He init, Nadam.
CIFAR_DNN = Workload("cifar_dnn", 3072, (100,) * 20, 10, "swish", "he", "nadam", 5e-5, 32, 10000)
CIFAR_DNN_BN = Workload("cifar_dnn_bn", 3072, (100,) * 20, 10, "swish", "he", "nadam", 5e-5, 32, 10000,
                        batch_norm=True)
WORKLOADS = {w.name: w for w in (MODEL_A, CIFAR_DNN, CIFAR_DNN_BN)}


def load_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["x"].astype(np.float32), f["y"].astype(np.int64)


def apply_threads() -> int:
    """Honour ``TRAINWELL_BENCH_THREADS`` (set by ``run.py --threads``) in torch contestants."""
    import os

    import torch

    n = int(os.environ.get("TRAINWELL_BENCH_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def clock() -> float:
    """The benchmark's clock: wall time, or this process's CPU seconds (all its threads) with
    ``TRAINWELL_BENCH_CLOCK=cpu`` (set by ``run.py --clock cpu``): on a machine shared with
    other jobs, a 1-thread contestant's CPU seconds do not count the time it waited for a core."""
    import os
    if os.environ.get("TRAINWELL_BENCH_CLOCK", "wall") == "cpu":
        return time.process_time()
    return time.perf_counter()


def emit(name: str, epoch_times: list[float], **extra: object) -> None:
    """Print the contestant's result line (the last line of its stdout)."""
    print(json.dumps({"name": name, "epoch_times": epoch_times, **extra}))
    sys.stdout.flush()


def timed_epochs(run_epoch, warmup: int, epochs: int,
                 warmup_times: list[float] | None = None) -> list[float]:
    """Run ``warmup`` epochs (their times, compilation included, go to ``warmup_times``), then
    time ``epochs`` epochs (:func:`clock`)."""
    for _ in range(warmup):
        t0 = clock()
        run_epoch()
        if warmup_times is not None:
            warmup_times.append(clock() - t0)
    times = []
    for _ in range(epochs):
        t0 = clock()
        run_epoch()
        times.append(clock() - t0)
    return times


def steps_per_epoch(w: Workload) -> int:
    return math.ceil(w.n_samples / w.batch_size)
