import torch

from trainwell.train import BatchIterator


def test_every_index_appears_once_per_epoch_and_last_partial_batch_is_kept():
    x = torch.arange(103.0).unsqueeze(1)
    y = torch.arange(103)
    it = BatchIterator(x, y, batch_size=10, seed=0)
    assert len(it) == 11
    for _ in range(3):
        batches = list(it.epoch())
        assert [len(b) for _, b in batches] == [10] * 10 + [3]
        seen = torch.cat([b for _, b in batches])
        assert torch.equal(seen.sort().values, y)
        assert torch.equal(torch.cat([a for a, _ in batches]).squeeze(1).long(), seen)


def test_shuffling_is_seeded_changes_each_epoch_and_ignores_the_global_rng():
    x, y = torch.zeros(50, 1), torch.arange(50)

    def orders(seed):
        it = BatchIterator(x, y, batch_size=50, seed=seed)
        torch.manual_seed(seed * 1000)  # global RNG must not matter
        return [next(iter(it.epoch()))[1] for _ in range(2)]

    a, b, c = orders(1), orders(1), orders(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], c[0])


def test_no_shuffle_yields_views_in_order():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    it = BatchIterator(x, y, batch_size=4, shuffle=False)
    batches = list(it.epoch())
    assert torch.equal(torch.cat([b for _, b in batches]), y)
    assert batches[0][0].data_ptr() == x.data_ptr()  # a view, no copy


def test_resuming_from_a_batch_index_gives_the_rest_of_the_same_permutation():
    x, y = torch.zeros(30, 1), torch.arange(30)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    full = torch.cat([b for _, b in BatchIterator(x, y, batch_size=7, generator=g).epoch()])
    g2 = torch.Generator()
    g2.set_state(state)
    rest = torch.cat([b for _, b in BatchIterator(x, y, batch_size=7, generator=g2).epoch(2)])
    assert torch.equal(rest, full[14:])


def test_prepermuted_epochs_give_the_per_batch_gathers_bit_for_bit():
    x, y = torch.randn(53, 3, 2), torch.arange(53)
    once = BatchIterator(x, y, batch_size=8, seed=4, prepermute=True)
    each = BatchIterator(x, y, batch_size=8, seed=4, prepermute=False)
    for start in (0, 0, 3):   # two whole epochs, then one resumed at batch 3
        got = list(zip(once.epoch(start), each.epoch(start), strict=True))
        assert len(got) == 7 - start
        for (xa, ya), (xb, yb) in got:
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.is_contiguous()
        # gathered once: every batch of the epoch is a slice of one copy
        assert len({xa.untyped_storage().data_ptr() for (xa, _), _ in got}) == 1
        assert len({xb.untyped_storage().data_ptr() for _, (xb, _) in got}) > 1
    held = next(iter(once.epoch()))[0]   # a batch kept past its epoch stays intact
    copy = held.clone()
    assert not torch.equal(next(iter(once.epoch()))[0], copy)
    assert torch.equal(held, copy)


def test_the_epoch_copy_is_made_only_where_it_fits_and_not_under_ddp(monkeypatch):
    from trainwell.train import batches

    x, y = torch.randn(400, 5), torch.arange(400)
    big = {"batch_size": batches.PREPERMUTE_MIN_BATCH}
    assert BatchIterator(x, y, **big).prepermute                     # small data: gathered once
    assert not BatchIterator(x, y, batch_size=32).prepermute         # per batch is as fast
    assert not BatchIterator(x, y, shuffle=False, **big).prepermute  # slices of x already
    assert not BatchIterator(x, y, world_size=2, **big).prepermute   # strided shards
    monkeypatch.setattr(batches, "PREPERMUTE_SHARE", 100 / batches.available_memory())
    assert not BatchIterator(x, y, **big).prepermute                 # more than the share allows
