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
