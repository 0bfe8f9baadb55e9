import numpy as np
import pytest
import torch

from trainwell.data import make_splits, transfer_split
from trainwell.errors import ConfigError


def test_last_n_validation_is_the_tail_of_the_training_set(raw10):
    s = make_splits(raw10, validation=100, standardize=False)
    assert len(s.x_train) == 400 and len(s.x_val) == 100 and len(s.x_test) == 100
    expected = torch.from_numpy(raw10.x_train[-100:].astype(np.float32) / 255)
    torch.testing.assert_close(s.x_val, expected)
    assert s.y_val.tolist() == raw10.y_train[-100:].tolist()
    assert s.y_train.dtype == torch.int64 and s.x_train.dtype == torch.float32


def test_stratified_fraction_keeps_class_proportions(raw10):
    y = raw10.y_train.copy()
    y[y >= 5] = 9  # unbalanced: 5 classes of 50, one of 250
    raw = type(raw10)(**{**raw10.__dict__, "y_train": y})
    s = make_splits(raw, validation=0.2, seed=3)
    counts = torch.bincount(s.y_val, minlength=10).tolist()
    assert counts[:5] == [10] * 5 and counts[9] == 50
    again = make_splits(raw, validation=0.2, seed=3)
    assert torch.equal(again.y_val, s.y_val)
    assert not torch.equal(make_splits(raw, validation=0.2, seed=4).x_val, s.x_val)


def test_standardization_uses_training_statistics_only(raw10):
    s = make_splits(raw10, validation=100, standardize=True)
    raw_tr = torch.from_numpy(raw10.x_train[:400].astype(np.float32) / 255)
    mu, sd = raw_tr.mean(0), raw_tr.std(0, correction=0)
    torch.testing.assert_close(s.mean, mu)
    torch.testing.assert_close(s.std, sd)
    raw_val = torch.from_numpy(raw10.x_train[400:].astype(np.float32) / 255)
    torch.testing.assert_close(s.x_val, (raw_val - mu) / sd)
    raw_te = torch.from_numpy(raw10.x_test.astype(np.float32) / 255)
    torch.testing.assert_close(s.x_test, (raw_te - mu) / sd)
    # transform() applies the same pipeline to raw uint8 inputs
    torch.testing.assert_close(s.transform(raw10.x_test), s.x_test)


def test_constant_features_are_only_centred():
    from trainwell.data.raw import RawData
    x = np.c_[np.full(8, 3.0), np.arange(8.0)].astype(np.float32)
    raw = RawData("c", x, np.arange(8) % 2, x[:2], np.array([0, 1]), "multiclass", 2)
    s = make_splits(raw, validation=2)
    assert s.std[0] == 1.0 and torch.all(s.x_train[:, 0] == 0)


def test_flatten_changes_input_shape_and_transform(raw10):
    s = make_splits(raw10, validation=0.1, flatten=True)
    assert s.input_shape == (16,) and s.x_train.shape[1:] == (16,)
    torch.testing.assert_close(s.transform(raw10.x_test), s.x_test)


def test_class_subset_relabels_in_given_order(raw10):
    s = make_splits(raw10, validation=0.2, classes=[7, "c2"])
    assert s.class_names == ["c7", "c2"] and s.n_outputs == 2
    assert len(s.y_train) + len(s.y_val) == 100 and len(s.y_test) == 20
    # images of class 7 became label 0
    x7 = raw10.x_test[raw10.y_test == 7]
    mask = s.y_test == 0
    torch.testing.assert_close(s.x_test[mask], s.transform(x7))
    with pytest.raises(ConfigError, match="data.classes"):
        make_splits(raw10, classes=[11, 2])


def test_train_limit_keeps_first_examples(raw10):
    s = make_splits(raw10, validation=100, train_limit=30, standardize=False)
    assert len(s.x_train) == 30
    assert s.y_train.tolist() == raw10.y_train[:30].tolist()


@pytest.mark.parametrize("bad", [500, -1, 1.0, 0.0, "10%", True])
def test_bad_validation_amount_is_a_config_error(raw10, bad):
    with pytest.raises(ConfigError, match="data.validation"):
        make_splits(raw10, validation=bad)


def test_transfer_split_a_has_eight_classes_without_sandals_and_shirts(raw10):
    s = make_splits(raw10, validation=100)
    a = transfer_split(s, task="A")
    assert a.n_outputs == 8 and a.task == "multiclass"
    assert a.class_names == ["c0", "c1", "c2", "c3", "c4", "c7", "c8", "c9"]
    assert set(a.y_train.tolist()) == set(range(8))
    keep = (s.y_train != 5) & (s.y_train != 6)
    expected = s.y_train[keep].clone()
    expected[expected > 6] -= 2  # the book: 7, 8, 9 → 5, 6, 7
    assert torch.equal(a.y_train, expected)
    assert len(a.y_test) == 80


def test_transfer_split_b_is_binary_shirt_positive_with_small_train_set(raw10):
    s = make_splits(raw10, validation=100)
    b = transfer_split(s, task="B", b_train_size=20)
    assert (b.task, b.n_outputs, b.class_names) == ("binary", 1, ["c5", "c6"])
    assert len(b.y_train) == 20 and b.y_train.dtype == torch.float32
    in_b = (s.y_train == 5) | (s.y_train == 6)
    assert torch.equal(b.x_train, s.x_train[in_b][:20])
    assert torch.equal(b.y_train, (s.y_train[in_b][:20] == 6).float())
    assert len(b.y_test) == 20 and set(b.y_val.tolist()) <= {0.0, 1.0}
    other = transfer_split(s, task="B", b_train_size=20, seed=1)
    assert not torch.equal(other.x_train, b.x_train)
    with pytest.raises(ConfigError, match="transfer.b_train_size"):
        transfer_split(s, task="B", b_train_size=10_000)


def test_saved_stats_transform_new_inputs_like_the_splits(raw10):
    import json

    from trainwell.data import apply_stats
    s = make_splits(raw10, validation=0.1, flatten=True)
    stats = json.loads(json.dumps(s.stats()))  # as stored in model.json
    torch.testing.assert_close(apply_stats(stats, raw10.x_test), s.x_test)
    torch.testing.assert_close(apply_stats(stats, raw10.x_test.reshape(100, 16)), s.x_test)
