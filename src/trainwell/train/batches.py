"""The in-memory batch iterator: one seeded permutation per epoch, batches by index_select."""

from __future__ import annotations

import torch

from trainwell.data.order import BatchOrder

__all__ = ["BatchIterator"]


class BatchIterator(BatchOrder):
    """Yields ``(x_batch, y_batch)`` from tensors that already live on the device.

    Each epoch draws one ``torch.randperm`` from a private, seeded ``torch.Generator`` (so the
    order does not depend on the global RNG, and resumes exactly); a batch is
    ``x.index_select(0, perm[i:i+batch_size])`` — no per-sample Python. The last partial batch
    is kept unless ``drop_last``. Without shuffling, batches are slices (views, no copy).
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

    Example:
        >>> it = BatchIterator(torch.arange(5.), torch.arange(5), batch_size=2, seed=1)
        >>> [len(yb) for _, yb in it.epoch()]
        [2, 2, 1]
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0,
                 generator: torch.Generator | None = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False):
        self.check_pair(x.shape[0], y.shape[0])
        super().__init__(x.shape[0], batch_size=batch_size, shuffle=shuffle, seed=seed,
                         generator=generator, rank=rank, world_size=world_size,
                         drop_last=drop_last, order_device=x.device)
        self.x, self.y = x, y

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``i`` of the epoch ordered by ``perm`` (this worker's shard of it)."""
        if perm is None:   # slices: views, no copy
            s = self.shard(i)
            return self.x[s], self.y[s]
        idx = self.indices(perm, i)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)
