"""``--jobs N``: studies that train several runs at the same time, one process each.

Runs are independent (their own seeds, their own run directories), so a pool of spawned
processes (a clean torch in each) trains them in parallel with the numbers of a serial run;
the cores are shared evenly (each process gets ``cores // N`` threads).
"""

from __future__ import annotations

import os
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["check_jobs", "process_pool"]


def check_jobs(jobs: Any) -> int:
    """``--jobs`` as an integer ≥ 1 (runs trained at the same time)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("--jobs", jobs, "an integer ≥ 1 (runs trained at the same time)")
    return jobs


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def process_pool(workers: int, jobs: int | None = None) -> Any:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes, each with its share of the
    cores (``cores // jobs`` threads; ``jobs`` defaults to ``workers``)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // (jobs or workers))
    return ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(threads,),
                               mp_context=multiprocessing.get_context("spawn"))
