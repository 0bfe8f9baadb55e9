"""How much memory training a network needs, estimated before a single weight is allocated.

The network is built on PyTorch's ``meta`` device (shapes only, no storage). The activations
of one batch are counted by walking the layers of a sequential network (dense and
convolutional layers, pooling, batch norm, activations, dropout: the output shape of each
follows from its settings); any other network runs one batch through on the meta device,
which makes torch load its compiler stack (about a second) — the walk avoids that for every
network the recipes build. The estimate counts the weights, their gradients and two optimizer
moments (Adam's; SGD needs less), and every layer's output kept for the backward pass plus its
gradient, all in float32.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["training_memory", "available_memory", "check_fits_in_memory", "activation_count"]

_BYTES = 4  # float32

# Layers whose output has the shape of their input.
_SAME_SHAPE_MODULES = ("torch.nn.modules.activation", "torch.nn.modules.dropout",
                       "torch.nn.modules.batchnorm")


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _next_shape(layer: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The output shape of ``layer`` (batch dimension first) or None when it is not known."""
    if isinstance(layer, nn.Identity) or type(layer).__module__ in _SAME_SHAPE_MODULES:
        return None if isinstance(layer, nn.MultiheadAttention) else shape
    if isinstance(layer, nn.Linear):
        return (*shape[:-1], layer.out_features) if shape[-1] == layer.in_features else None
    if isinstance(layer, nn.Flatten):
        start, end = layer.start_dim % len(shape), layer.end_dim % len(shape)
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])
    if isinstance(layer, nn.Unflatten) and isinstance(layer.dim, int):
        d = layer.dim % len(shape)
        inner = tuple(int(s) for s in layer.unflattened_size)
        return (*shape[:d], *inner, *shape[d + 1:]) if math.prod(inner) == shape[d] else None
    if len(shape) != 4:
        return None
    n, c, h, w = shape
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return (n, c, *_pair(layer.output_size))
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        if isinstance(layer, nn.Conv2d):
            if layer.in_channels != c or not isinstance(layer.padding, tuple) \
                    or layer.padding_mode != "zeros":
                return None
            c, dilation = layer.out_channels, _pair(layer.dilation)
        else:
            if getattr(layer, "ceil_mode", False):
                return None
            dilation = _pair(getattr(layer, "dilation", 1))
        k, s = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
        p = _pair(layer.padding)
        h, w = ((size + 2 * p[i] - dilation[i] * (k[i] - 1) - 1) // s[i] + 1
                for i, size in enumerate((h, w)))
        return (n, c, h, w) if h > 0 and w > 0 else None
    return None


def activation_count(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> int | None:
    """Elements of every layer's output for one batch, from the layers' settings alone.

    Walks a sequential network layer by layer (nested ``nn.Sequential`` blocks included) and
    returns None for anything else — a network with its own ``forward``, or a layer whose
    output shape it does not know.
    """
    if not isinstance(model, nn.Sequential):
        return None
    for m in model.modules():
        if list(m.children()) and not isinstance(m, nn.Sequential):
            return None
    shape: tuple[int, ...] | None = (int(batch_size), *(int(s) for s in input_shape))
    total = 0
    for layer in _leaves(model):
        shape = _next_shape(layer, shape)
        if shape is None:
            return None
        total += math.prod(shape)
    return total


def _meta_activation_count(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> int:
    """Elements of every layer's output for one batch, measured by a pass on the meta device
    (0 when a layer has no meta kernel: the weights are then counted alone)."""
    acts = 0

    def count(_m: nn.Module, _i: Any, out: Any) -> None:
        nonlocal acts
        if isinstance(out, torch.Tensor):
            acts += out.numel()

    hooks = [m.register_forward_hook(count) for m in _leaves(model)]
    try:
        with torch.no_grad():
            model(torch.empty(batch_size, *input_shape, device="meta"))
    except Exception:  # a layer without a meta kernel: count the weights only
        acts = 0
    finally:
        for h in hooks:
            h.remove()
    return acts


def training_memory(build: Callable[[], nn.Module], input_shape: tuple[int, ...],
                    batch_size: int) -> tuple[int, int]:
    """``(parameters, bytes)`` that training the network ``build()`` returns would need."""
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = build()
    params = sum(p.numel() for p in model.parameters())
    acts = activation_count(model, input_shape, batch_size)
    if acts is None:
        acts = _meta_activation_count(model, input_shape, batch_size)
    return params, (4 * params + 2 * acts) * _BYTES


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes the device can give: total memory of a GPU, the available RAM of the host."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_fits_in_memory(build: Callable[[], nn.Module], input_shape: tuple[int, ...],
                         batch_size: int, device: torch.device | str = "cpu", *,
                         field: str = "model.hidden", value: Any = None) -> None:
    """Refuse, before building it, a network whose training would not fit in memory.

    Raises:
        ConfigError: naming ``field``, with the estimate and the memory available.
    """
    params, need = training_memory(build, input_shape, batch_size)
    have = available_memory(device)
    if have is not None and need > have:
        raise ConfigError(field, value, f"a network that fits in memory: this one has "
                          f"{params:,} parameters and training it needs about {_gb(need)} "
                          f"(weights, gradients, optimizer state and activations of a batch of "
                          f"{batch_size}), but {_gb(have)} are available on {torch.device(device)}")
