"""Streaming: features read from disk batch by batch, with the in-memory path's exact batches.

A :class:`StreamedPart` stands where a features tensor stands in
:class:`~trainwell.data.Splits` (``len``, ``shape``, slicing and index tensors give float32
tensors, scaled and standardized like the in-memory path); targets stay in memory (small).

:class:`StreamingBatches` is the training batch source. Like the in-memory
:class:`~trainwell.train.batches.BatchIterator` it is a :class:`~trainwell.data.order.BatchOrder`
(``len``, ``permutation()``, ``batch(perm, i)``, ``epoch(start)``: one order, shard and resume
code for both), so batch *i* of an epoch holds the same samples in the same order as in
memory, and a resumed run continues mid-epoch exactly. A ``torch.utils.data.DataLoader`` (worker processes,
pinned memory on CUDA) reads the batches ahead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainwell.data.order import BatchOrder
from trainwell.data.sources import ArraySource
from trainwell.errors import DataError

__all__ = ["StreamedPart", "StreamingBatches", "streaming_stats", "is_streamed",
           "STATS_CHUNK"]

#: Rows per chunk of the statistics pass (fixed: both paths sum in the same order).
STATS_CHUNK = 4096


def is_streamed(x: Any) -> bool:
    """True for features read from disk per batch (a :class:`StreamedPart`)."""
    return isinstance(x, StreamedPart)


def to_features(raw: np.ndarray, scale: float, mean: torch.Tensor | None,
                std: torch.Tensor | None, flatten: bool) -> torch.Tensor:
    """Raw samples → float32 model inputs: x / scale, then (x − μ) / σ (as in memory)."""
    t = torch.from_numpy(np.ascontiguousarray(raw)).to(torch.float32)
    t = t / scale if scale != 1.0 else t
    if flatten:
        t = t.reshape(len(t), -1)
    if mean is not None:
        t = t.sub_(mean).div_(std)
    return t


def streaming_stats(chunks: Iterator[torch.Tensor], shape: tuple[int, ...],
                    floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and population std in one pass over float32 chunks.

    Chan's parallel update in float64 (count, mean, M2 per chunk, then merged), so the result
    does not depend on holding the data; σ < ``floor`` becomes 1 (only centred).
    """
    n = 0
    mean = m2 = None
    for c in chunks:
        c = c.reshape(len(c), -1).to(torch.float64)
        k = len(c)
        if k == 0:
            continue
        cm = c.mean(0)
        cm2 = (c - cm).square().sum(0)
        if mean is None:
            n, mean, m2 = k, cm, cm2
            continue
        delta = cm - mean
        total = n + k
        mean = mean + delta * (k / total)
        m2 = m2 + cm2 + delta.square() * (n * k / total)
        n = total
    if mean is None:
        raise DataError("cannot standardize: the training set is empty")
    std = (m2 / n).clamp_min(0).sqrt()
    std = torch.where(std < floor, torch.ones_like(std), std)
    return mean.to(torch.float32).reshape(shape), std.to(torch.float32).reshape(shape)


class StreamedPart:
    """One split's features, read from an :class:`~trainwell.data.sources.ArraySource`.

    Args:
        source: where the raw samples live.
        indices: which samples of ``source`` form this split, in order.
        scale, mean, std, flatten: the transform of the in-memory path.
    """

    def __init__(self, source: ArraySource, indices: np.ndarray, *, scale: float = 1.0,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 flatten: bool = False):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.scale, self.mean, self.std, self.flatten = float(scale), mean, std, flatten
        sample = (int(np.prod(source.shape)),) if flatten else tuple(source.shape)
        self.shape = torch.Size((len(self.indices), *sample))
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, rows: np.ndarray) -> torch.Tensor:
        """Rows ``rows`` of this split as model inputs (float32, CPU)."""
        raw = self.source.read(self.indices[rows])
        return to_features(raw, self.scale, self.mean, self.std, self.flatten)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, slice):
            return self.read(np.arange(len(self))[key])
        if isinstance(key, torch.Tensor):
            key = key.detach().cpu().numpy()   # host sync: index tensors of a streamed read
        rows = np.asarray(key, dtype=np.int64)
        if rows.ndim == 0:
            return self.read(rows.reshape(1))[0]
        return self.read(rows)

    def chunks(self, size: int = STATS_CHUNK) -> Iterator[torch.Tensor]:
        """The split in order, ``size`` rows at a time."""
        for lo in range(0, len(self), size):
            yield self.read(np.arange(lo, min(lo + size, len(self))))

    def materialize(self) -> torch.Tensor:
        """The whole split as one tensor (the in-memory path)."""
        parts = list(self.chunks())
        if not parts:
            return torch.empty((0, *self.shape[1:]), dtype=torch.float32)
        return torch.cat(parts)

    def with_stats(self, mean: torch.Tensor | None, std: torch.Tensor | None) -> StreamedPart:
        return StreamedPart(self.source, self.indices, scale=self.scale, mean=mean, std=std,
                            flatten=self.flatten)

    def __repr__(self) -> str:
        return f"StreamedPart({self.source.where}, {tuple(self.shape)})"


class _BatchReads(Dataset):
    """Item j = batch ``start + j`` of one epoch's order (the DataLoader batches nothing)."""

    def __init__(self, part: StreamedPart, order: np.ndarray, shards: list[slice], start: int):
        # the shards are plain slices (picklable for worker processes), one per batch to read
        self.part, self.order, self.shards, self.start = part, order, shards, start

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, j: int) -> tuple[int, torch.Tensor]:
        return self.start + j, self.part.read(self.order[self.shards[j]])


class StreamingBatches(BatchOrder):
    """Training batches read from disk, in the in-memory iterator's order.

    The order, drop-last and the DDP shards are :class:`~trainwell.data.order.BatchOrder`'s,
    the same class the in-memory :class:`~trainwell.train.batches.BatchIterator` is.

    Args:
        x: the training features (:class:`StreamedPart`).
        y: the training targets, already on the device.
        batch_size, shuffle, generator: as :class:`~trainwell.train.batches.BatchIterator`.
        device: where batches go (non-blocking copies from pinned memory on CUDA).
        workers: DataLoader worker processes (0 = read in this process).
        rank, world_size: DDP sharding, as the in-memory iterator (items rank, rank+N, … of
            every global batch). drop_last: leave out the last partial batch.
    """

    def __init__(self, x: StreamedPart, y: torch.Tensor, *, batch_size: int = 32,
                 shuffle: bool = True, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", workers: int = 0, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False):
        self.check_pair(len(x), y.shape[0])
        # the order stays on the CPU: it indexes the files
        super().__init__(len(x), batch_size=batch_size, shuffle=shuffle, seed=seed,
                         generator=generator, rank=rank, world_size=world_size,
                         drop_last=drop_last)
        self.x, self.y = x, y
        self.device = torch.device(device)
        self.workers = int(workers)
        self._iter: Iterator[Any] | None = None
        self._key: tuple[int, int] | None = None   # (id of the epoch's order, next batch)

    def _start(self, perm: torch.Tensor | None, i: int) -> None:
        order = np.arange(self.n) if perm is None else perm.numpy()
        reads = _BatchReads(self.x, order, [self.shard(k) for k in range(i, len(self))], i)
        pin = self.device.type == "cuda"
        # its own generator: a DataLoader otherwise draws its base seed from the global RNG,
        # which would shift every dropout mask against the in-memory path
        loader = DataLoader(reads, batch_size=None, shuffle=False, num_workers=self.workers,
                            pin_memory=pin, persistent_workers=False,
                            prefetch_factor=4 if self.workers else None,
                            generator=torch.Generator().manual_seed(0))
        self._iter = iter(loader)
        self._key = (id(perm), i)

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``i`` of the epoch ordered by ``perm`` (read ahead by the loader)."""
        if self._key != (id(perm), i):
            self._start(perm, i)
        got, xb = next(self._iter)
        self._key = (id(perm), i + 1)
        yb = self.y.index_select(0, self.indices(perm, i).to(self.y.device))
        return xb.to(self.device, non_blocking=True), yb
