"""The in-memory batch iterator: one seeded permutation per epoch, the epoch's data gathered
once in that order (or per batch, where memory is short), batches as slices."""

from __future__ import annotations

import torch

from trainwell.data.order import BatchOrder
from trainwell.nn.memory import available_memory

__all__ = ["BatchIterator", "PREPERMUTE_MIN_BATCH", "PREPERMUTE_SHARE"]

#: Gather each epoch's data once from this batch size up (below it, per-batch gathers are as
#: fast: benchmarks/bench_prepermute.py) ...
PREPERMUTE_MIN_BATCH = 128
#: ... and when that copy takes at most this share of the memory the device has free (it
#: holds the training set twice); otherwise gather per batch.
PREPERMUTE_SHARE = 0.25


def room_for_a_copy(nbytes: int, device: torch.device) -> bool:
    """True when ``nbytes`` more fit in :data:`PREPERMUTE_SHARE` of the device's free memory."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = available_memory("cpu")
    return free is not None and nbytes <= PREPERMUTE_SHARE * free


class BatchIterator(BatchOrder):
    """Yields ``(x_batch, y_batch)`` from tensors that already live on the device.

    Each epoch draws one ``torch.randperm`` from a private, seeded ``torch.Generator`` (so the
    order does not depend on the global RNG, and resumes exactly), then gathers the epoch's
    data in that order once (``x.index_select(0, perm)``), so each batch is a contiguous slice
    of it: on a CPU at 1 thread a model A epoch is 5–10% faster at batch sizes 128–2048,
    but not at 32 (``benchmarks/bench_prepermute.py``). That copy holds the training set
    twice, so below :data:`PREPERMUTE_MIN_BATCH`, where it would take more than
    :data:`PREPERMUTE_SHARE` of the free memory, and under DDP, each batch is gathered on its
    own (``x.index_select(0, perm[i:i+batch_size])``); the batches are the same either way,
    and no per-sample Python. The last partial batch is kept unless ``drop_last``. Without shuffling,
    batches are slices of ``x`` (views, no copy).
    The order and the DDP shards are :class:`~trainwell.data.order.BatchOrder`'s, which the
    streamed batch source shares.

    Args:
        x, y: tensors with the same first dimension, on the training device.
        batch_size: samples per batch (default 32).
        shuffle: reshuffle every epoch (default True).
        seed: seed of the shuffling generator (default 0).
        rank, world_size: with ``world_size`` N > 1 (DistributedDataParallel), this process
            gets items ``rank, rank+N, ...`` of every global batch of ``batch_size`` samples:
            the workers see disjoint shards of the same seeded permutation, and the epoch has
            as many (global) steps as on one process.
        drop_last: leave out the last partial batch (default False).
        prepermute: gather each epoch's data once (True), per batch (False), or decide by the
            batch size and the free memory (None, the default).

    Example:
        >>> it = BatchIterator(torch.arange(5.), torch.arange(5), batch_size=2, seed=1)
        >>> [len(yb) for _, yb in it.epoch()]
        [2, 2, 1]
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0,
                 generator: torch.Generator | None = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False, prepermute: bool | None = None):
        self.check_pair(x.shape[0], y.shape[0])
        super().__init__(x.shape[0], batch_size=batch_size, shuffle=shuffle, seed=seed,
                         generator=generator, rank=rank, world_size=world_size,
                         drop_last=drop_last, order_device=x.device)
        self.x, self.y = x, y
        if prepermute is None:   # a DDP worker's shards are strided: they would not be slices
            prepermute = (self.shuffle and self.world_size == 1
                          and self.batch_size >= PREPERMUTE_MIN_BATCH
                          and room_for_a_copy(x.nbytes + y.nbytes, x.device))
        self.prepermute = bool(prepermute)
        self._gathered: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def permutation(self) -> torch.Tensor | None:
        """Draw the next epoch's order (on the data's device) and gather the data in it."""
        perm = super().permutation()
        self._gathered = None   # the last epoch's copy goes first: never three copies at once
        if perm is not None and self.prepermute:
            self._gathered = (perm, self.x.index_select(0, perm), self.y.index_select(0, perm))
        return perm

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``i`` of the epoch ordered by ``perm`` (this worker's shard of it)."""
        if perm is None:   # slices: views, no copy
            s = self.shard(i)
            return self.x[s], self.y[s]
        if self._gathered is not None and self._gathered[0] is perm:
            s = self.shard(i)   # the epoch's data already in order: a slice of it
            return self._gathered[1][s], self._gathered[2][s]
        idx = self.indices(perm, i)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)
