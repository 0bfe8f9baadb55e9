"""Which samples make each training batch: the one order both batch sources follow.

:class:`BatchOrder` owns the epoch's order — one seeded ``torch.randperm`` per epoch from a
private generator, the last partial batch kept or dropped, each DDP worker's shard of every
global batch, and a start batch for a run resumed mid-epoch. The in-memory iterator
(:class:`~trainwell.train.batches.BatchIterator`) and the streamed one
(:class:`~trainwell.data.stream.StreamingBatches`) are both a ``BatchOrder`` that only say how
to fetch the rows it names, so streamed and in-memory runs see the same batches for the same
random seed by construction.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["BatchOrder", "BatchSource"]


class BatchSource:
    """What the Trainer iterates: ``len``, ``permutation()``, ``batch(perm, i)``, ``epoch``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def permutation(self) -> torch.Tensor | None:
        raise NotImplementedError

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def epoch(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of batches, from batch ``start`` (a run resumed mid-epoch)."""
        perm = self.permutation()
        for i in range(start, len(self)):
            yield self.batch(perm, i)


class BatchOrder(BatchSource):
    """The order and sharding of an epoch's batches over ``n`` samples.

    Args:
        n: samples per epoch.
        batch_size: samples per global batch (all DDP workers together; default 32).
        shuffle: reshuffle every epoch (default True); without it the order is 0 … n-1.
        seed: seed of the shuffling generator (default 0), unless ``generator`` is given.
        generator: a ``torch.Generator`` to draw from (the Trainer's: it saves and restores
            its state to redraw an interrupted epoch's permutation).
        rank, world_size: with ``world_size`` N > 1 this worker gets items ``rank, rank+N, …``
            of every global batch: disjoint shards of the same permutation, and as many
            (global) steps per epoch as on one process.
        drop_last: leave out the last partial batch (default False).
        order_device: where :meth:`permutation` puts the order (default: the CPU).

    Subclasses implement ``batch(perm, i)``: fetch the rows :meth:`indices` names.
    """

    def __init__(self, n: int, *, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                 generator: torch.Generator | None = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False,
                 order_device: torch.device | str | None = None):
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last = bool(drop_last)
        self.order_device = torch.device(order_device or "cpu")
        self.generator = generator if generator is not None else torch.Generator()
        if generator is None:
            self.generator.manual_seed(seed)

    @staticmethod
    def check_pair(n_x: int, n_y: int) -> None:
        """Features and targets must hold the same number of samples."""
        if n_x != n_y:
            raise ValueError(f"x has {n_x} samples but y has {n_y}")

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def permutation(self) -> torch.Tensor | None:
        """Draw the next epoch's order; ``None`` without shuffling."""
        if not self.shuffle:
            return None
        # Drawn on the CPU generator (device-independent, resumable), moved once per epoch.
        return torch.randperm(self.n, generator=self.generator).to(self.order_device)

    def global_size(self, i: int) -> int:
        """Samples in global batch ``i`` (all workers together)."""
        return min(self.batch_size, self.n - i * self.batch_size)

    def shard(self, i: int) -> slice:
        """This worker's positions of batch ``i`` in the epoch's order."""
        lo = i * self.batch_size
        return slice(lo + self.rank, min(lo + self.batch_size, self.n), self.world_size)

    def indices(self, perm: torch.Tensor | None, i: int) -> torch.Tensor:
        """The sample indices of this worker's part of batch ``i`` of the epoch ``perm``."""
        s = self.shard(i)
        if perm is None:
            return torch.arange(s.start, s.stop, s.step, device=self.order_device)
        return perm[s]
