"""Weight initializers of Table 11-1, matched automatically to the activation.

=======  ==============  =================================
name     σ² (normal)     used for (``init="auto"``)
=======  ==============  =================================
glorot   1 / fan_avg     none, tanh, sigmoid, softmax
he       2 / fan_in      ReLU family, ELU, GELU, Swish, Mish
lecun    1 / fan_in      SELU
normal   1               (demonstrates vanishing gradients)
=======  ==============  =================================

with fan_avg = (fan_in + fan_out) / 2. Three distributions, each with exactly the variance σ²:

- ``"normal"``: N(0, σ²), the formula of the chapter and what ``torch.nn.init`` provides;
- ``"truncated_normal"``: what Keras' ``he_normal``/``lecun_normal``/``glorot_normal`` draw —
  a normal with std s = σ / 0.87962566 cut at ±2s (no weight beyond 2s; the division restores
  the variance the cut removes);
- ``"uniform"``: U(−r, r) with r = √(3σ²).

Biases start at zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn.activations import auto_initializer
from trainwell.registry import Registry

__all__ = ["INITIALIZERS", "DISTRIBUTIONS", "TRUNCATED_STD", "initialize_linear",
           "init_variance", "resolve_init", "check_distribution"]

INITIALIZERS = Registry("initializer")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

#: Standard deviation of a standard normal cut at ±2 (Keras' truncated-normal correction).
TRUNCATED_STD = 0.87962566103423978

# name → (fan mode, scale): σ² = scale / fan.
INITIALIZERS.register("glorot", ("fan_avg", 1.0), description="σ² = 1/fan_avg (Xavier)",
                      aliases=("xavier",), variance="1/fan_avg")
INITIALIZERS.register("he", ("fan_in", 2.0), description="σ² = 2/fan_in (Kaiming)",
                      aliases=("kaiming",), variance="2/fan_in")
INITIALIZERS.register("lecun", ("fan_in", 1.0), description="σ² = 1/fan_in",
                      variance="1/fan_in")
INITIALIZERS.register("normal", ("one", 1.0),
                      description="σ² = 1: standard normal, shows vanishing/exploding gradients",
                      aliases=("standard_normal",), variance="1")


def resolve_init(init: str, activation: str | None, *, field: str = "model.init") -> str:
    """The canonical initializer name; ``"auto"`` becomes the Table 11-1 match of ``activation``."""
    if isinstance(init, str) and init.strip().lower() == "auto":
        return auto_initializer(activation)
    if not isinstance(init, str):
        raise ConfigError(field, init, ["auto", *INITIALIZERS.names()])
    if init not in INITIALIZERS:
        raise ConfigError(field, init, ["auto", *INITIALIZERS.names()])
    return INITIALIZERS.get(init).name


def init_variance(init: str, fan_in: int, fan_out: int) -> float:
    """σ² of ``init`` (a canonical name, not ``"auto"``) for a layer with these fans."""
    mode, scale = INITIALIZERS.get(init, field="model.init").obj
    fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2, "one": 1.0}[mode]
    return scale / fan


def check_distribution(distribution: str, *, field: str = "model.init_distribution") -> str:
    """The canonical distribution name (``normal``, ``truncated_normal`` or ``uniform``)."""
    key = distribution.strip().lower().replace("-", "_") if isinstance(distribution, str) else None
    if key not in DISTRIBUTIONS:
        raise ConfigError(field, distribution, DISTRIBUTIONS)
    return key


def initialize_linear(layer: nn.Linear, init: str = "auto", distribution: str = "normal",
                      activation: str | None = "relu") -> nn.Linear:
    """Initialize ``layer.weight`` in place per Table 11-1 and set its bias to zero.

    Args:
        layer: an ``nn.Linear`` (weight shaped ``(fan_out, fan_in)``).
        init: ``"auto"`` (match ``activation``), ``"glorot"``, ``"he"``, ``"lecun"`` or
            ``"normal"`` (N(0, 1)). Default ``"auto"``.
        distribution: ``"normal"`` → N(0, σ²); ``"truncated_normal"`` → N(0, (σ/0.8796)²) cut
            at ±2σ/0.8796 (Keras ``*_normal``; variance σ²); ``"uniform"`` → U(−√(3σ²), √(3σ²)).
        activation: the activation that follows the layer (``None``/``"none"`` for logits).

    Returns:
        the same layer.

    Example:
        >>> layer = initialize_linear(nn.Linear(1000, 500), "he")   # std ≈ √(2/1000)
    """
    name = resolve_init(init, activation)
    distribution = check_distribution(distribution)
    w = layer.weight
    receptive = w[0][0].numel() if w.dim() > 2 else 1     # conv kernels: k·k
    fan_out, fan_in = w.shape[0] * receptive, w[0].numel()
    std = math.sqrt(init_variance(name, fan_in, fan_out))
    if w.is_meta:  # shapes only (the memory check): no values to draw
        return layer
    with torch.no_grad():
        if distribution == "uniform":
            bound = math.sqrt(3.0) * std
            nn.init.uniform_(w, -bound, bound)
        elif distribution == "truncated_normal":
            s = std / TRUNCATED_STD
            nn.init.trunc_normal_(w, 0.0, s, a=-2.0 * s, b=2.0 * s)
        else:
            nn.init.normal_(w, 0.0, std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return layer
