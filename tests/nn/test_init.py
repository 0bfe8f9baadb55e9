"""Initializers against the Table 11-1 formulas."""

import math

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn import ACTIVATIONS, INITIALIZERS, auto_initializer, initialize_linear

FAN_IN, FAN_OUT = 1000, 500
# Table 11-1, written out independently of the code.
TABLE_VARIANCE = {"glorot": 1 / ((FAN_IN + FAN_OUT) / 2), "he": 2 / FAN_IN,
                  "lecun": 1 / FAN_IN, "normal": 1.0}


@pytest.mark.parametrize("name", ["glorot", "he", "lecun", "normal"])
def test_normal_initializer_has_table_11_1_variance_and_zero_bias(name):
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    initialize_linear(layer, name, "normal")
    w = layer.weight
    assert w.mean().abs() < 0.01 * math.sqrt(TABLE_VARIANCE[name])
    assert w.var().item() == pytest.approx(TABLE_VARIANCE[name], rel=0.02)
    # A plain normal (not truncated): some draws beyond 2σ (≈4.55% of them).
    beyond = (w.abs() > 2 * math.sqrt(TABLE_VARIANCE[name])).float().mean().item()
    assert beyond == pytest.approx(0.0455, abs=0.004)
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("name", ["glorot", "he", "lecun", "normal"])
def test_uniform_initializer_bounds_are_sqrt_3_sigma2(name):
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    initialize_linear(layer, name, "uniform")
    r = math.sqrt(3 * TABLE_VARIANCE[name])
    w = layer.weight
    assert w.abs().max().item() <= r
    assert w.abs().max().item() > 0.999 * r          # fills the whole interval
    assert w.var().item() == pytest.approx(TABLE_VARIANCE[name], rel=0.02)


@pytest.mark.parametrize("activation,expected", [
    ("sigmoid", "glorot"), ("tanh", "glorot"), ("none", "glorot"), ("softmax", "glorot"),
    (None, "glorot"), ("relu", "he"), ("leaky_relu", "he"), ("rrelu", "he"), ("prelu", "he"),
    ("elu", "he"), ("gelu", "he"), ("swish", "he"), ("mish", "he"), ("selu", "lecun")])
def test_auto_initializer_follows_table_11_1(activation, expected):
    assert auto_initializer(activation) == expected


def test_every_activation_has_an_auto_initializer():
    for name in ACTIVATIONS.names():
        assert auto_initializer(name) in INITIALIZERS.names()


def test_auto_init_uses_the_activation_match():
    torch.manual_seed(0)
    layer = initialize_linear(nn.Linear(FAN_IN, FAN_OUT), "auto", activation="selu")
    assert layer.weight.var().item() == pytest.approx(1 / FAN_IN, rel=0.02)


def test_bad_init_names_are_config_errors():
    with pytest.raises(ConfigError, match="model.init"):
        initialize_linear(nn.Linear(3, 3), "orthogonal")
    with pytest.raises(ConfigError, match="model.init_distribution"):
        initialize_linear(nn.Linear(3, 3), "he", "cauchy")


def _truncated_std_at_2() -> float:
    """Std of a standard normal cut at ±2, from its density: √(1 − 4φ(2)/(2Φ(2) − 1))."""
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))          # 2Φ(2) − 1
    return math.sqrt(1 - 4 * phi / mass)


@pytest.mark.parametrize("name", ["glorot", "he", "lecun"])
def test_truncated_normal_keeps_the_table_variance_and_cuts_at_two_sigma(name):
    from trainwell.nn.init import TRUNCATED_STD

    assert TRUNCATED_STD == pytest.approx(_truncated_std_at_2(), rel=1e-9)
    torch.manual_seed(0)
    layer = initialize_linear(nn.Linear(FAN_IN, FAN_OUT), name, "truncated_normal")
    w = layer.weight
    sigma = math.sqrt(TABLE_VARIANCE[name])
    s = sigma / _truncated_std_at_2()            # Keras: stddev = σ / .87962566103423978
    assert w.var().item() == pytest.approx(TABLE_VARIANCE[name], rel=0.02)
    assert w.abs().max().item() <= 2 * s          # nothing beyond the cut
    assert w.abs().max().item() > 0.99 * 2 * s    # and the cut is reached
    assert torch.count_nonzero(layer.bias) == 0


def test_unknown_distribution_names_the_field():
    with pytest.raises(ConfigError, match="model.init_distribution.*truncated_normal"):
        initialize_linear(nn.Linear(3, 2), "he", "gaussian")
