"""The in-memory batch iterator: one seeded permutation per epoch, batches by index_select."""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["BatchIterator"]


class BatchIterator:
    """Yields ``(x_batch, y_batch)`` from tensors that already live on the device.

    Each epoch draws one ``torch.randperm`` from a private, seeded ``torch.Generator`` (so the
    order does not depend on the global RNG, and resumes exactly); a batch is
    ``x.index_select(0, perm[i:i+batch_size])`` — no per-sample Python. The last partial batch
    is kept unless ``drop_last``. Without shuffling, batches are slices (views, no copy).

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
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        self.x, self.y = x, y
        self.n = int(x.shape[0])
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last = bool(drop_last)
        self.generator = generator if generator is not None else torch.Generator()
        if generator is None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def permutation(self) -> torch.Tensor | None:
        """Draw the next epoch's order (on the data's device); ``None`` without shuffling."""
        if not self.shuffle:
            return None
        # Drawn on the CPU generator (device-independent, resumable), moved once per epoch.
        return torch.randperm(self.n, generator=self.generator).to(self.x.device)

    def global_size(self, i: int) -> int:
        """Samples in global batch ``i`` (all workers together)."""
        return min(self.batch_size, self.n - i * self.batch_size)

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``i`` of the epoch ordered by ``perm`` (this worker's shard of it)."""
        lo = i * self.batch_size
        hi = min(lo + self.batch_size, self.n)
        r, n = self.rank, self.world_size
        if perm is None:
            return self.x[lo + r:hi:n], self.y[lo + r:hi:n]
        idx = perm[lo + r:hi:n]
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def epoch(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of batches (from batch ``start``)."""
        perm = self.permutation()
        for i in range(start, len(self)):
            yield self.batch(perm, i)
