"""``--nproc N``: start N local training workers with torchrun's launcher.

The workers run ``python -m trainwell fit ...`` — the very command a cluster user starts with
``torchrun --nnodes … --nproc-per-node … -m trainwell fit RECIPE`` — so both paths are one code
path. The launcher is torch's own (``torch.distributed.launcher.api.elastic_launch``,
standalone rendezvous on this machine, no restarts): trainwell only checks the request before
anything starts and turns a failed job into one message naming the rank that failed.

How workers report back (internal):
- a worker's user error (a :class:`~trainwell.errors.TrainwellError`) is written to the error
  file torchrun gives it and the worker exits 2 without printing; the launcher prints it once;
- rank 0 writes the path of its run directory to ``TRAINWELL_RUN_DIR_FILE`` as soon as the
  folder exists, so a failure message can say where the last good checkpoint is.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from trainwell.errors import ConfigError, TrainwellError
from trainwell.train.distributed import RUN_DIR_FILE_ENV

__all__ = ["check_nproc", "launch_fit", "record_worker_error", "WorkerFailed"]
EXIT_USER_ERROR = 2

# Errors a worker gets because another worker went away (not the cause of the failure).
_PEER_LOST = ("connection closed", "connection reset", "broken pipe", "timed out",
              "distbackenderror", "by peer", "remote worker")


class WorkerFailed(TrainwellError):
    """A training worker died: the job stopped (message names the rank and its error)."""


def check_nproc(nproc: Any, device: str | None) -> int:
    """``--nproc`` as a positive int that fits the machine (one process per GPU on CUDA).

    Raises:
        ConfigError: naming ``--nproc``, before anything is started.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError("--nproc", nproc, "an integer ≥ 1 (processes on this machine)")
    if nproc > 1 and (device or "auto").startswith(("cuda", "auto")):
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus and nproc > gpus:
            raise ConfigError("--nproc", nproc,
                              f"at most {gpus}: one process per GPU (this machine has {gpus})")
        if not gpus and (device or "").startswith("cuda"):
            raise ConfigError("train.device", device, "auto or cpu (CUDA is not available here)")
    return nproc


def record_worker_error(exc: BaseException) -> bool:
    """In a torchrun worker: write ``exc`` for the launcher (which prints it once); True then.

    Written the way torchrun's ``ErrorHandler`` writes it, but atomically (temp file +
    rename): the launcher polls the file while the worker may still be writing it.
    """
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import json
    import time
    import traceback

    data = {"message": {"message": f"{type(exc).__name__}: {exc}", "extraInfo": {
        "py_callstack": "".join(traceback.format_exception(exc)),
        "timestamp": str(int(time.time()))}}}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return True


def is_peer_lost(message: str) -> bool:
    """Whether an error only says that another worker went away."""
    return any(p in message.lower() for p in _PEER_LOST)


def _message(failure: Any) -> str:
    m = failure.message
    if isinstance(m, dict):
        m = m.get("message", "")
    return str(m or "")


def _root_cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure that caused the others: a killed worker, else an error not about losing a
    peer, else the earliest."""
    def key(item: tuple[int, Any]) -> tuple[int, int, int]:
        rank, f = item
        if f.exitcode < 0:  # SIGTERM is how the launcher stops the survivors; a survivor
            # whose collective lost its peer may abort (SIGABRT) before it is stopped
            kind = {-signal.SIGTERM: 2, -signal.SIGABRT: 1}.get(f.exitcode, 0)
        else:
            kind = 3 if is_peer_lost(_message(f)) else 1
        return (kind, f.timestamp, rank)

    return min(failures.items(), key=key)


def describe_failure(failures: dict[int, Any], run_dir: str | None, nproc: int,
                     resume_hint: str) -> tuple[int, str]:
    """(exit code, the one message) for a job whose workers failed."""
    rank, f = _root_cause(failures)
    text = _message(f)
    if f.exitcode == EXIT_USER_ERROR and f.error_file_data:
        # a user error: its own words (every worker found the same problem)
        return EXIT_USER_ERROR, text.split(": ", 1)[1] if ": " in text else text
    if f.exitcode < 0:
        why = f"was killed by signal {f.signal_name()}"
    else:
        why = f"failed (exit code {f.exitcode}): {text}"
    msg = f"training stopped: worker rank {rank} {why}"
    if run_dir:
        msg += (f". The last good checkpoint is kept in {Path(run_dir) / 'checkpoints'}; "
                f"continue with `trainwell fit --resume {run_dir} --nproc {nproc}{resume_hint}`")
    return 1, msg


def launch_fit(worker_args: list[str], nproc: int, *, resume_hint: str = "") -> int:
    """Run ``python -m trainwell fit <worker_args>`` on ``nproc`` local workers.

    Returns:
        the job's exit code: 0 on success, rank 0's code for a diverged (1) or interrupted
        (130) run (rank 0 has printed why).

    Raises:
        TrainwellError: a worker's user error (exit 2), or :class:`WorkerFailed` naming the
            rank that failed and where the last good checkpoint is.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # CPU workers share the cores: no more threads than cores in all (torchrun sets 1).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    fd, run_dir_file = tempfile.mkstemp(prefix="trainwell-run-", suffix=".txt")
    os.close(fd)
    os.environ[RUN_DIR_FILE_ENV] = run_dir_file
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=f"trainwell-{uuid.uuid4().hex[:8]}", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    # the one message below replaces torch's own log lines about the stopped workers
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)("-m", "trainwell", "fit", *worker_args)
        return 0
    except ChildFailedError as exc:
        failures = exc.failures
        crashed = {r: f for r, f in failures.items()
                   if f.exitcode < 0 or f.error_file_data}
        if not crashed:  # rank 0 ended the run (diverged, interrupted) and said why
            return max((f.exitcode for f in failures.values()), default=1)
        run_dir = Path(run_dir_file).read_text(encoding="utf-8").strip() or None
        code, msg = describe_failure(crashed, run_dir, nproc, resume_hint)
        if code == EXIT_USER_ERROR:
            raise TrainwellError(msg) from None
        raise WorkerFailed(msg) from None
    except Exception as exc:  # torch's launcher itself failed: still one message
        run_dir = Path(run_dir_file).read_text(encoding="utf-8").strip() or None
        where = (f"; the last good checkpoint is kept in {Path(run_dir) / 'checkpoints'}"
                 if run_dir else "")
        raise WorkerFailed(f"training stopped: the process launcher failed "
                           f"({type(exc).__name__}: {exc}){where}") from None
    finally:
        os.environ.pop(RUN_DIR_FILE_ENV, None)
        try:
            os.unlink(run_dir_file)
        except OSError:
            pass

