import pytest
import torch
from torch import nn


def _blobs(n=240, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    return x, y


@pytest.fixture
def blobs():
    """Separable 3-class data: (x_train, y_train, x_val, y_val)."""
    x, y = _blobs()
    return x[:180], y[:180], x[180:], y[180:]


def make_mlp(d=6, k=3, hidden=16, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    layers = [nn.Linear(d, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, k))
    return nn.Sequential(*layers)


@pytest.fixture
def mlp():
    return make_mlp
