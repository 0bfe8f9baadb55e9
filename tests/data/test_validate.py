import numpy as np
import pytest
import torch

from trainwell.data import validate_arrays
from trainwell.errors import DataError


def check(x, y, task="multiclass", n=3, shape=(2,)):
    validate_arrays(x, y, task=task, n_outputs=n, input_shape=shape, where="data.x_train")


def test_good_arrays_pass_numpy_and_torch():
    check(np.zeros((4, 2), np.float32), np.array([0, 1, 2, 0]))
    check(torch.zeros(4, 2), torch.tensor([0, 1, 2, 0]))
    check(np.zeros((2, 2)), np.array([1.0, 0.0]), task="binary", n=1)
    check(np.zeros((2, 2)), np.array([[1, 0, 1], [0, 0, 0]]), task="multilabel")
    check(np.zeros((2, 2)), np.array([1.5, -2.0]), task="regression", n=1)


def test_nan_features_say_how_many_and_first_index():
    x = np.zeros((5, 2))
    x[3, 1] = np.nan
    x[4, 0] = np.inf
    with pytest.raises(DataError, match=r"^data.x_train: 2 feature values are NaN or Inf \(first at example 3\)$"):
        check(x, np.zeros(5, np.int64))


def test_labels_out_of_range_are_named():
    with pytest.raises(DataError, match=r"^data.y_train: 2 labels outside 0..2 \(first at example 1: 3\)$"):
        check(np.zeros((4, 2)), np.array([0, 3, -1, 2]))


def test_mismatched_lengths():
    with pytest.raises(DataError, match="data.x_train: 4 examples but data.y_train has 3"):
        check(np.zeros((4, 2)), np.zeros(3, np.int64))


def test_non_numeric_dtype():
    with pytest.raises(DataError, match="data.x_train: features must be numeric, got dtype <U1"):
        check(np.array([["a", "b"]]), np.zeros(1, np.int64))
    with pytest.raises(DataError, match="data.y_train: targets must be numeric"):
        check(np.zeros((1, 2)), np.array(["cat"]))


def test_shape_that_does_not_fit_the_model():
    with pytest.raises(DataError, match=r"shape \(2, 2\) but the model takes \(4,\) \(same number of features"):
        check(np.zeros((3, 2, 2)), np.zeros(3, np.int64), shape=(4,))
    with pytest.raises(DataError, match=r"shape \(5,\) but the model takes \(2,\)$"):
        check(np.zeros((3, 5)), np.zeros(3, np.int64))


def test_binary_and_multilabel_targets_must_be_zero_or_one():
    with pytest.raises(DataError, match="binary targets must be 0 or 1, found 2.0 at example 1"):
        check(np.zeros((2, 2)), np.array([1.0, 2.0]), task="binary", n=1)
    with pytest.raises(DataError, match=r"multilabel targets must have shape \(2, 3\)"):
        check(np.zeros((2, 2)), np.array([0, 1]), task="multilabel")


def test_regression_targets_must_be_finite():
    with pytest.raises(DataError, match=r"data.y_train: 1 regression targets are NaN or Inf \(first at example 1\)"):
        check(np.zeros((2, 2)), np.array([0.0, np.nan]), task="regression", n=1)
