"""Convolutional networks: conv blocks (conv → batch norm → activation) and ``build_cnn``.

A recipe describes the convolutional base compactly, as in the chapter's Fashion-MNIST CNN::

    conv = [[64, 7], "pool", [128, 3], [128, 3], "pool", [256, 3], [256, 3], "pool"]

``[filters, kernel]`` (or ``[filters, kernel, stride]``) is one 2-D convolution with "same"
padding; ``"pool"`` is a 2×2 max pooling, ``"avgpool"`` a 2×2 average pooling and ``"gap"``
a global average pooling. The dense head (``hidden``) and the logits layer follow a
``Flatten``. Every practice of the dense builder applies: Table 11-1 initializers with the
conv fan-in (in_channels·k·k, via ``torch.nn.init``), batch norm before or after the
activation in the Keras momentum convention, dropout in the dense head, max-norm per filter
and l1/l2 penalties on the conv kernels (both find layers by type).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn.blocks import add_activation_and_bn
from trainwell.nn.init import initialize_linear

__all__ = ["CONV_LAYERS", "POOLS", "parse_conv", "conv_block", "build_cnn_layers"]

#: Layer types trainwell treats as convolutions (diagnosis, max-norm, folding, export).
CONV_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: The pooling words of ``model.conv``.
POOLS = ("pool", "avgpool", "gap")
_CONV_ACCEPTED = ('a list of [filters, kernel] or [filters, kernel, stride] pairs and "pool", '
                  '"avgpool" or "gap", e.g. [[32, 3], [32, 3], "pool", [64, 3], "pool"]')


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def parse_conv(conv: Any) -> list[str | tuple[int, int, int]]:
    """``model.conv`` as a list of ``"pool"``/``"avgpool"``/``"gap"`` and (filters, kernel, stride).

    Raises:
        ConfigError: ``model.conv`` naming what is accepted.

    Example:
        >>> parse_conv([[32, 3], "pool", [64, 5, 2]])
        [(32, 3, 1), 'pool', (64, 5, 2)]
    """
    if isinstance(conv, (str, bytes)) or not isinstance(conv, Sequence) or not conv:
        raise ConfigError("model.conv", conv, _CONV_ACCEPTED)
    out: list[str | tuple[int, int, int]] = []
    for item in conv:
        if isinstance(item, str) and item.strip().lower() in POOLS:
            out.append(item.strip().lower())
        elif (isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3)
              and all(_positive_int(v) for v in item)):
            filters, kernel, *stride = (int(v) for v in item)
            out.append((filters, kernel, stride[0] if stride else 1))
        else:
            raise ConfigError("model.conv", conv, _CONV_ACCEPTED + f" (bad item: {item!r})")
    if not any(isinstance(item, tuple) for item in out):
        raise ConfigError("model.conv", conv, _CONV_ACCEPTED + " with at least one convolution")
    if "gap" in out and out.index("gap") != len(out) - 1:
        raise ConfigError("model.conv", conv, '"gap" (global average pooling) as the last item')
    return out


def conv_block(in_channels: int, filters: int, kernel: int, stride: int = 1, *,
               activation: str = "relu", init: str = "he", init_distribution: str = "truncated_normal",
               batch_norm: str = "none", bn_momentum: float = 0.99, bn_epsilon: float = 1e-5,
               leaky_slope: float = 0.01) -> nn.Sequential:
    """One convolution as an ``nn.Sequential`` with children among ``conv, bn, act``.

    "Same" padding (``kernel // 2``); ``batch_norm="before"`` gives conv (no bias: BN's β
    replaces it) → bn → act, ``"after"`` conv → act → bn. ``BatchNorm2d`` takes the Keras
    momentum m as torch momentum 1−m (running ← running·m + batch·(1−m)). The kernel is
    initialized per Table 11-1 with fan_in = in_channels·k·k and fan_out = filters·k·k.

    Example:
        >>> [n for n, _ in conv_block(1, 8, 3, batch_norm="before").named_children()]
        ['conv', 'bn', 'act']
    """
    block = nn.Sequential()
    conv = nn.Conv2d(in_channels, filters, kernel, stride=stride, padding=kernel // 2,
                     bias=batch_norm != "before")
    initialize_linear(conv, init, init_distribution, activation)  # works on any kernel shape
    block.add_module("conv", conv)
    add_activation_and_bn(block, nn.BatchNorm2d, filters, activation=activation,
                          leaky_slope=leaky_slope, batch_norm=batch_norm,
                          bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    return block


def image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, height, width) of one sample: (H, W) is one channel, (C, H, W) as is."""
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1]))
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    raise ConfigError("model.kind", "cnn", f"image inputs of shape (H, W) or (C, H, W); this "
                      f"data has samples of shape {tuple(shape)} (set data.flatten = false, or "
                      "use kind = \"mlp\" for vectors)")


def build_cnn_layers(model: nn.Sequential, shape: Sequence[int], conv: Any, **block: Any
                     ) -> int:
    """Add the convolutional base to ``model`` (children ``unsqueeze``, ``conv1``, ``pool1``…,
    ``flatten``); return the number of features the dense head receives."""
    c, h, w = image_shape(shape)
    if len(shape) == 2:
        model.add_module("unsqueeze", nn.Unflatten(1, (1, h)))  # (N, H, W) → (N, 1, H, W)
    n_conv = n_pool = 0
    for item in parse_conv(conv):
        if isinstance(item, tuple):
            filters, kernel, stride = item
            n_conv += 1
            model.add_module(f"conv{n_conv}", conv_block(c, filters, kernel, stride, **block))
            c = filters
            h, w = (h + 2 * (kernel // 2) - kernel) // stride + 1, \
                (w + 2 * (kernel // 2) - kernel) // stride + 1
        else:
            n_pool += 1
            if item == "gap":
                model.add_module(f"pool{n_pool}", nn.AdaptiveAvgPool2d(1))
                h = w = 1
            else:
                pool = nn.MaxPool2d(2) if item == "pool" else nn.AvgPool2d(2)
                model.add_module(f"pool{n_pool}", pool)
                h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ConfigError("model.conv", conv, f"layers that fit {tuple(shape)} inputs: "
                              f"after {item!r} nothing of the image is left (use fewer "
                              "\"pool\" items or larger images)")
    model.add_module("flatten", nn.Flatten())
    return math.prod((c, h, w))
