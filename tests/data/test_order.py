"""One batch order for both batch sources: streamed and in-memory runs see the same batches
for the same random seed, also as DDP shards, with drop_last and from a mid-epoch start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainwell.data.order import BatchOrder
from trainwell.data.sources import NpySource
from trainwell.data.stream import StreamedPart, StreamingBatches
from trainwell.train import BatchIterator


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> tuple[StreamedPart, torch.Tensor, torch.Tensor]:
    x = np.random.default_rng(0).integers(0, 256, (23, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("order") / "x.npy"
    np.save(path, x)
    y = torch.arange(23)
    return StreamedPart(NpySource(path), np.arange(23)), torch.from_numpy(x).float(), y


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [False, True])
def test_streamed_shards_equal_in_memory_shards(streamed, shuffle, drop_last):
    part, x, y = streamed
    kw = {"batch_size": 6, "seed": 4, "shuffle": shuffle, "drop_last": drop_last,
          "world_size": 2}
    for rank in (0, 1):
        a = BatchIterator(x, y, rank=rank, **kw)
        b = StreamingBatches(part, y, rank=rank, **kw)
        assert len(a) == len(b) == (3 if drop_last else 4)
        for start in (0, 2):   # a run resumed at batch 2 gets the rest of the same epoch
            got = list(zip(a.epoch(start), b.epoch(start), strict=True))
            assert len(got) == len(a) - start
            for (xa, ya), (xb, yb) in got:
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
                assert torch.equal(xa, x[ya])


def test_shards_of_an_uneven_last_batch_cover_it_once():
    order = [BatchOrder(11, batch_size=4, seed=1, rank=r, world_size=3) for r in range(3)]
    whole = BatchOrder(11, batch_size=4, seed=1)
    perms = [o.permutation() for o in order]
    ref = whole.permutation()
    for i in range(len(whole)):
        parts = [o.indices(p, i).tolist() for o, p in zip(order, perms, strict=True)]
        assert sorted(sum(parts, [])) == sorted(whole.indices(ref, i).tolist())
        assert sum(map(len, parts)) == whole.global_size(i)
    assert [whole.global_size(i) for i in range(len(whole))] == [4, 4, 3]


def test_augmented_shards_are_not_sharded_again():
    # the Trainer shards a source's batches itself only when the source does not say it
    # already did (its world_size); an augmented source must pass its sharding on
    from trainwell.data.augment import Augment, AugmentedBatches

    x, y = torch.randn(20, 4, 4), torch.arange(20)
    aug = Augment(flip=True, seed=0, input_shape=(4, 4))
    parts = [AugmentedBatches(BatchIterator(x, y, batch_size=8, seed=2, rank=r, world_size=2),
                              aug) for r in (0, 1)]
    assert [p.world_size for p in parts] == [2, 2]
    assert [parts[0].global_size(i) for i in range(len(parts[0]))] == [8, 8, 4]
    ys = [[yb for _, yb in p.epoch()] for p in parts]
    for a, b in zip(*ys, strict=True):
        assert len(a) == len(b) and not set(a.tolist()) & set(b.tolist())
    assert sorted(torch.cat(ys[0] + ys[1]).tolist()) == list(range(20))
