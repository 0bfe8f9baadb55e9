"""ℓ1 / ℓ2 weight penalties on kernels, with Keras regularizer semantics.

penalty = l1 · Σ|w| + l2 · Σw², summed over the *kernels* only — the weight matrices of
Linear and Conv layers — never biases, batch-norm scales/shifts or embeddings. Add it to the
loss: ``loss = task_loss + kernel_penalty(model, l2=0.01)``. Note the Keras convention: l2
multiplies Σw² directly (no ½), so its gradient is 2·l2·w.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["kernel_parameters", "kernel_penalty", "KERNEL_LAYERS"]

#: Layer types whose ``weight`` is a kernel.
KERNEL_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)


def kernel_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The kernels (weights of Linear / Bilinear / Conv layers) of ``model``, each once.

    Example:
        >>> m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
        >>> [tuple(p.shape) for p in kernel_parameters(m)]
        [(4, 3), (2, 4)]
    """
    seen: set[int] = set()
    kernels = []
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(module, KERNEL_LAYERS) and isinstance(w, torch.Tensor) and id(w) not in seen:
            seen.add(id(w))  # tied weights count once
            kernels.append(w)
    return kernels


def _factor(field: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ConfigError(f"regularization.{field}", value, "a number >= 0 (0 turns it off)")
    return float(value)


def kernel_penalty(model_or_params: nn.Module | Iterable[torch.Tensor], *, l1: float = 0.0,
                   l2: float = 0.0) -> torch.Tensor:
    """l1 · Σ|w| + l2 · Σw² over the kernels of a model (or over the given tensors).

    Args:
        model_or_params: a module (its :func:`kernel_parameters` are used) or tensors.
        l1: ℓ1 factor ≥ 0 (default 0). l2: ℓ2 factor ≥ 0 (default 0).

    Returns:
        A differentiable 0-dim tensor (zero when both factors are 0 or there are no kernels).

    Raises:
        ConfigError: ``regularization.l1`` / ``regularization.l2`` negative.

    Example:
        >>> lin = nn.Linear(2, 1); _ = lin.weight.data.copy_(torch.tensor([[1.0, -2.0]]))
        >>> kernel_penalty(lin, l1=0.1, l2=0.01)
        tensor(0.3500, grad_fn=<AddBackward0>)
    """
    a, b = _factor("l1", l1), _factor("l2", l2)
    if isinstance(model_or_params, nn.Module):
        weights = kernel_parameters(model_or_params)
    else:
        weights = list(model_or_params)
    if not weights or (a == 0 and b == 0):
        device = weights[0].device if weights else None
        return torch.zeros((), device=device)
    total = None
    # One multi-tensor kernel per term, then a single stacked sum.
    if a > 0:
        term = torch.stack([t.sum() for t in torch._foreach_abs(weights)]).sum() * a
        total = term
    if b > 0:
        term = torch.stack([t.sum() for t in torch._foreach_mul(weights, weights)]).sum() * b
        total = term if total is None else total + term
    return total
