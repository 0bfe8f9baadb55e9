"""Fashion-MNIST from $TRAINWELL_DATA (the shared official files); skipped when absent."""

import os
from pathlib import Path

import pytest
import torch

from trainwell.data import load_dataset, transfer_split

ROOT = os.environ.get("TRAINWELL_DATA", "")
pytestmark = [pytest.mark.realdata, pytest.mark.skipif(
    not ROOT or not (Path(ROOT) / "fashion-mnist").is_dir(),
    reason="needs $TRAINWELL_DATA/fashion-mnist")]


@pytest.fixture(scope="module")
def fmnist():
    return load_dataset("fashion_mnist", download=False)


def test_fashion_mnist_book_split(fmnist):
    s = fmnist
    assert s.x_train.shape == (55000, 28, 28) and s.x_val.shape == (5000, 28, 28)
    assert s.x_test.shape == (10000, 28, 28) and s.input_shape == (28, 28)
    assert s.class_names[5] == "Sandal" and s.n_outputs == 10
    counts = torch.bincount(torch.cat([s.y_train, s.y_val]), minlength=10)
    assert counts.tolist() == [6000] * 10
    assert torch.bincount(s.y_test).tolist() == [1000] * 10
    # standardized with training statistics
    assert abs(float(s.x_train.mean())) < 1e-4


def test_fashion_mnist_transfer_tasks(fmnist):
    a = transfer_split(fmnist, task="A")
    b = transfer_split(fmnist, task="B")
    assert a.n_outputs == 8 and len(a.y_test) == 8000
    assert len(b.y_train) == 200 and len(b.y_test) == 2000 and b.task == "binary"
