"""Weight initializers of Table 11-1, matched automatically to the activation.

=======  ==============  =================================
name     σ² (normal)     used for (``init="auto"``)
=======  ==============  =================================
glorot   1 / fan_avg     none, tanh, sigmoid, softmax
he       2 / fan_in      ReLU family, ELU, GELU, Swish, Mish
lecun    1 / fan_in      SELU
normal   1               (demonstrates vanishing gradients)
=======  ==============  =================================

with fan_avg = (fan_in + fan_out) / 2. ``distribution="normal"`` draws N(0, σ²);
``"uniform"`` draws U(−r, r) with r = √(3σ²), which has the same variance.

Unlike Keras, whose ``*_normal`` initializers draw a *truncated* normal rescaled to the
target variance, trainwell draws a plain normal with exactly the Table 11-1 variance (the
chapter's formula, and what ``torch.nn.init`` provides). Biases start at zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn.activations import auto_initializer
from trainwell.registry import Registry

__all__ = ["INITIALIZERS", "DISTRIBUTIONS", "initialize_linear", "init_variance",
           "resolve_init"]

INITIALIZERS = Registry("initializer")
DISTRIBUTIONS = ("normal", "uniform")

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


def initialize_linear(layer: nn.Linear, init: str = "auto", distribution: str = "normal",
                      activation: str | None = "relu") -> nn.Linear:
    """Initialize ``layer.weight`` in place per Table 11-1 and set its bias to zero.

    Args:
        layer: an ``nn.Linear`` (weight shaped ``(fan_out, fan_in)``).
        init: ``"auto"`` (match ``activation``), ``"glorot"``, ``"he"``, ``"lecun"`` or
            ``"normal"`` (N(0, 1)). Default ``"auto"``.
        distribution: ``"normal"`` → N(0, σ²); ``"uniform"`` → U(−√(3σ²), √(3σ²)).
        activation: the activation that follows the layer (``None``/``"none"`` for logits).

    Returns:
        the same layer.

    Example:
        >>> layer = initialize_linear(nn.Linear(1000, 500), "he")   # std ≈ √(2/1000)
    """
    name = resolve_init(init, activation)
    if not isinstance(distribution, str) or distribution.strip().lower() not in DISTRIBUTIONS:
        raise ConfigError("model.init_distribution", distribution, DISTRIBUTIONS)
    uniform = distribution.strip().lower() == "uniform"
    w = layer.weight
    with torch.no_grad():
        # torch.nn.init gains chosen so that σ² is exactly the Table 11-1 variance.
        if name == "glorot":
            (nn.init.xavier_uniform_ if uniform else nn.init.xavier_normal_)(w, gain=1.0)
        elif name in ("he", "lecun"):
            nonlinearity = "relu" if name == "he" else "linear"   # gain √2 or 1
            fn = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
            fn(w, mode="fan_in", nonlinearity=nonlinearity)
        else:  # "normal": σ² = 1
            if uniform:
                nn.init.uniform_(w, -math.sqrt(3.0), math.sqrt(3.0))
            else:
                nn.init.normal_(w, 0.0, 1.0)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return layer
