"""Dense blocks: linear → batch norm (before or after the activation) → activation → dropout."""

from __future__ import annotations

from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn.activations import ACTIVATIONS, make_activation
from trainwell.nn.init import initialize_linear

__all__ = ["BATCH_NORM_PLACES", "DROPOUT_KINDS", "make_dropout", "dense_block"]

BATCH_NORM_PLACES = ("none", "before", "after")
DROPOUT_KINDS = ("auto", "standard", "alpha")


def make_dropout(p: float, kind: str = "standard") -> nn.Module:
    """An inverted-dropout module: in training each input is zeroed with probability ``p``
    and the survivors are scaled by 1/(1−p); at eval it is the identity.

    Args:
        p: drop rate, 0 ≤ p < 1.
        kind: ``"standard"`` (``nn.Dropout``) or ``"alpha"`` (``nn.AlphaDropout``, which keeps
            the mean and standard deviation of SELU activations).

    Example:
        >>> make_dropout(0.2, "alpha")
        AlphaDropout(p=0.2, inplace=False)
    """
    if kind == "alpha":
        return nn.AlphaDropout(p)
    if kind == "standard":
        return nn.Dropout(p)
    raise ConfigError("regularization.dropout_kind", kind, ["standard", "alpha"])


def dense_block(in_features: int, units: int, *, activation: str = "relu", init: str = "auto",
                init_distribution: str = "normal", batch_norm: str = "none",
                bn_momentum: float = 0.99, bn_epsilon: float = 1e-5, dropout: float = 0.0,
                dropout_kind: str = "standard", leaky_slope: float = 0.01) -> nn.Sequential:
    """One hidden layer as an ``nn.Sequential`` with children among ``linear, bn, act, dropout``.

    ``batch_norm="before"`` gives linear (no bias: BN's β replaces it) → bn → act;
    ``"after"`` gives linear → act → bn. ``bn_momentum`` is in the Keras convention:
    running ← running·m + batch·(1−m), i.e. torch momentum 1−m (torch updates the running
    variance with the unbiased batch variance, Keras with the biased one: a factor n/(n−1)).

    Args:
        in_features: inputs of the linear layer.
        units: units of the layer.
        activation: a name of ``ACTIVATIONS``. Default ``"relu"``.
        init: ``"auto"`` or an initializer name; init_distribution: ``"normal"``/``"uniform"``.
        batch_norm: ``"none"`` (default), ``"before"`` or ``"after"`` the activation.
        bn_momentum: Keras momentum m in (0, 1), default 0.99; bn_epsilon: ε, default 1e-5.
        dropout: drop rate after the activation (0 = none); dropout_kind: ``"standard"``/``"alpha"``.
        leaky_slope: α of leaky_relu.

    Arguments are assumed valid; :func:`trainwell.nn.build_model` validates them.

    Example:
        >>> list(dense_block(784, 300, batch_norm="before").named_children())[1][0]
        'bn'
    """
    block = nn.Sequential()
    linear = nn.Linear(in_features, units, bias=batch_norm != "before")
    initialize_linear(linear, init, init_distribution, activation)
    block.add_module("linear", linear)
    # leaky_slope is leaky_relu's α only; elu and prelu keep their own defaults.
    slope = leaky_slope if ACTIVATIONS.canonical(activation) == "leaky_relu" else None
    act = make_activation(activation, alpha=slope, features=units)
    bn = nn.BatchNorm1d(units, eps=bn_epsilon, momentum=round(1.0 - bn_momentum, 15))
    if batch_norm == "before":
        block.add_module("bn", bn)
        block.add_module("act", act)
    elif batch_norm == "after":
        block.add_module("act", act)
        block.add_module("bn", bn)
    else:
        block.add_module("act", act)
    if dropout > 0:
        block.add_module("dropout", make_dropout(dropout, dropout_kind))
    return block
