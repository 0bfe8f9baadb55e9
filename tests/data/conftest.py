"""Small fakes shared by the data tests."""

from __future__ import annotations

import numpy as np
import pytest

from trainwell.data.raw import RawData


@pytest.fixture
def raw10() -> RawData:
    """A 10-class image-like dataset: 50 training examples per class, 10 test per class."""
    rng = np.random.default_rng(0)
    y_tr = np.repeat(np.arange(10), 50)
    rng.shuffle(y_tr)
    y_te = np.repeat(np.arange(10), 10)
    x_tr = rng.integers(0, 256, size=(500, 4, 4), dtype=np.uint8)
    x_te = rng.integers(0, 256, size=(100, 4, 4), dtype=np.uint8)
    names = [f"c{i}" for i in range(10)]
    return RawData(name="toy", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                   task="multiclass", n_outputs=10, class_names=names, scale=255.0)
