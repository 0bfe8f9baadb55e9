"""The memory check: the layer walk counts what a pass on the meta device measures, and a
network that does not fit is refused before any weight exists."""

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn import build_model
from trainwell.nn.init import initialize_linear
from trainwell.nn.memory import (
    _meta_activation_count,
    activation_count,
    check_fits_in_memory,
    training_memory,
)

NETWORKS = [
    ((784,), dict(hidden=[300, 100])),
    ((784,), dict(hidden=[100] * 20, batch_norm="before", dropout=0.2, input_batch_norm=True)),
    ((20,), dict(hidden=[30, 30], activation="selu", dropout=0.1)),
    ((20,), dict(hidden=[16], activation="prelu", batch_norm="after", input_dropout=0.2)),
    ((28, 28), dict(hidden=[32])),
    ((28, 28), dict(kind="cnn", conv=[[8, 3], "pool", [16, 3, 2]], hidden=[32])),
    ((3, 17, 9), dict(kind="cnn", conv=[[8, 5], "avgpool", [16, 3], "gap"], hidden=[],
                      batch_norm="before", dropout=0.3)),
    ((1, 28, 28), dict(kind="cnn", conv=[[32, 3], [32, 3], "pool", [64, 3], "pool"],
                       hidden=[128], batch_norm="after", dropout=0.3)),
]


@pytest.mark.parametrize(("shape", "kwargs"), NETWORKS)
def test_layer_walk_counts_what_the_meta_pass_measures(shape, kwargs):
    with torch.device("meta"):
        model = build_model(input_shape=shape, n_outputs=10, **kwargs)
    walked = activation_count(model, shape, 7)
    assert walked is not None and walked > 0
    assert walked == _meta_activation_count(model, shape, 7)


def test_estimate_is_weights_gradients_two_moments_and_activations():
    params, need = training_memory(lambda: build_model(input_shape=(10,), n_outputs=3,
                                                       hidden=[5]), (10,), 4)
    assert params == 10 * 5 + 5 + 5 * 3 + 3
    acts = 4 * (5 + 5 + 3)  # linear, relu, output for a batch of 4 (Flatten is not added)
    assert need == (4 * params + 2 * acts) * 4


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(x + torch.relu(self.a(x)))


def test_a_network_with_its_own_forward_is_measured_on_the_meta_device():
    with torch.device("meta"):
        model = _Residual()
    assert activation_count(model, (8,), 5) is None  # the walk does not guess
    params, need = training_memory(_Residual, (8,), 5)
    assert params == 8 * 8 + 8 + 8 * 2 + 2
    assert need == (4 * params + 2 * 5 * (8 + 2)) * 4


def test_a_network_that_does_not_fit_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as e:
        check_fits_in_memory(lambda: build_model(input_shape=(1000,), n_outputs=10,
                                                 hidden=[1_000_000, 1_000_000]),
                             (1000,), 32, value=[1_000_000, 1_000_000])
    assert "model.hidden" in str(e.value) and "fits in memory" in str(e.value)


def test_initializing_a_shape_only_layer_draws_nothing():
    with torch.device("meta"):
        layer = nn.Linear(4, 3)
    assert initialize_linear(layer, "he") is layer and layer.weight.is_meta
