"""How much memory training a network needs, estimated before a single weight is allocated.

The network is built on PyTorch's ``meta`` device (shapes only, no storage) and one batch is
passed through it to measure the activations. The estimate counts the weights, their
gradients and two optimizer moments (Adam's; SGD needs less), and every layer's output kept
for the backward pass plus its gradient, all in float32.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["training_memory", "available_memory", "check_fits_in_memory"]

_BYTES = 4  # float32


def training_memory(build: Callable[[], nn.Module], input_shape: tuple[int, ...],
                    batch_size: int) -> tuple[int, int]:
    """``(parameters, bytes)`` that training the network ``build()`` returns would need."""
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = build()
    params = sum(p.numel() for p in model.parameters())
    acts = 0

    def count(_m: nn.Module, _i: Any, out: Any) -> None:
        nonlocal acts
        if isinstance(out, torch.Tensor):
            acts += out.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(batch_size, *input_shape, device="meta"))
    except Exception:  # a layer without a meta kernel: count the weights only
        acts = 0
    finally:
        for h in hooks:
            h.remove()
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
