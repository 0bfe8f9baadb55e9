"""Many processes, one model: PyTorch's DistributedDataParallel as trainwell uses it.

trainwell does not launch or coordinate processes itself: ``torchrun`` (or ``trainwell fit
--nproc N``, which calls torchrun's launcher) starts the workers and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; :func:`setup` joins the process
group (gloo on CPU, nccl on CUDA). What trainwell adds on top:

- every worker sees a disjoint shard of each *global* batch (``train.batch_size`` is the
  global batch; worker ``r`` of ``N`` takes samples ``r, r+N, ...`` of it), so a run on N
  processes follows the same global steps as a run on one;
- :func:`loss_weight` makes the averaged gradient the mean over the global batch even when a
  batch does not split evenly (DDP averages the per-process means);
- metrics are summed over the workers once per epoch (:func:`all_reduce_sum`), so every worker
  computes the same logs and the callbacks take the same decisions everywhere;
- only rank 0 writes files (:func:`is_main`).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
from torch import nn

__all__ = ["world_size", "rank", "local_rank", "is_main", "is_distributed", "setup",
           "backend_for", "check_shards", "shard", "loss_weight", "all_reduce_sum", "all_gather_object",
           "broadcast_buffers", "broadcast_object", "wrap_model", "unwrap", "launched_by_torchrun",
           "announce_run_dir", "RUN_DIR_FILE_ENV"]

#: A file where rank 0 writes its run directory's path (set by ``trainwell fit --nproc``'s
#: launcher, which names it when a worker fails).
RUN_DIR_FILE_ENV = "TRAINWELL_RUN_DIR_FILE"


def launched_by_torchrun() -> bool:
    """True inside a worker started by torchrun (or ``trainwell fit --nproc``) with N > 1."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def is_distributed() -> bool:
    """True once this process is part of a process group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes training together (1 without a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 when unset)."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0, or no process group)."""
    return rank() == 0


def backend_for(device: torch.device) -> str:
    """nccl for CUDA devices, gloo otherwise (CPU)."""
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group when this process is one of its workers.

    Idempotent; a no-op outside torchrun. On CUDA each worker uses ``cuda:LOCAL_RANK``.

    Returns:
        the device this worker trains on.
    """
    import torch.distributed as dist

    if not launched_by_torchrun():
        return device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device), timeout=datetime.timedelta(minutes=10),
                                device_id=device if device.type == "cuda" else None)
    return device


def check_shards(n_train: int, batch_size: int, n: int) -> None:
    """Refuse a split where a worker would get no sample of some global batch.

    Raises:
        ConfigError: ``--nproc`` (more processes than training samples) or
            ``train.batch_size`` (a global batch, or the last one, smaller than the processes).
    """
    from trainwell.errors import ConfigError

    if n <= 1:
        return
    if n > n_train:
        raise ConfigError("--nproc", n, f"at most {n_train}: the training set has only "
                          f"{n_train} samples, each process needs at least one")
    if batch_size < n:
        raise ConfigError("train.batch_size", batch_size,
                          f"at least {n}: it is the global batch, split over {n} processes")
    last = n_train % batch_size
    if 0 < last < n:
        near = [b for b in range(max(n, batch_size - 64), batch_size + 65)
                if not 0 < n_train % b < n]
        hint = min(near, key=lambda b: abs(b - batch_size)) if near else None
        raise ConfigError("train.batch_size", batch_size,
                          f"a global batch size whose last batch has at least {n} samples "
                          f"(one per process): {n_train} samples leave a last batch of {last}"
                          + (f"; e.g. {hint}" if hint else ""))


def shard(batch: torch.Tensor, r: int | None = None, n: int | None = None) -> torch.Tensor:
    """This worker's part of a global batch: items ``r, r+n, r+2n, ...`` (a view, no copy)."""
    r = rank() if r is None else r
    n = world_size() if n is None else n
    return batch if n == 1 else batch[r::n]


def loss_weight(n_local: int, n_global: int, n: int | None = None) -> float:
    """Factor on this worker's mean loss so that DDP's average of the N workers' gradients
    is the gradient of the mean over the global batch: ``n_local · N / n_global``
    (1.0 when the batch splits evenly)."""
    n = world_size() if n is None else n
    return 1.0 if n_local * n == n_global else n_local * n / n_global


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the workers in place (nothing to do on one process)."""
    if is_distributed():
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """Every worker's ``obj``, by rank (``[obj]`` on one process)."""
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every worker (``obj`` itself on one process)."""
    if not is_distributed():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def announce_run_dir(run_dir: Any) -> None:
    """Rank 0: tell ``--nproc``'s launcher where the run directory is (for failure messages)."""
    path = os.environ.get(RUN_DIR_FILE_ENV)
    if path and is_main():
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(str(run_dir))
        except OSError:
            pass


def broadcast_buffers(model: nn.Module) -> None:
    """Give every worker rank 0's buffers (batch-norm running statistics)."""
    if not is_distributed():
        return
    import torch.distributed as dist

    for b in unwrap(model).buffers():
        dist.broadcast(b, src=0)


def wrap_model(model: nn.Module, device: torch.device, *, sync_batch_norm: bool = False
               ) -> nn.Module:
    """``model`` as a DistributedDataParallel module (``model`` itself on one process).

    ``sync_batch_norm`` converts batch norm layers to SyncBatchNorm (statistics over the
    global batch); by default each process normalizes with its own shard's statistics, and
    the running statistics are rank 0's.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_batch_norm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper or a compiled module."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model) if _is_ddp(model) else model


def _is_ddp(model: nn.Module) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel)
