"""Gradient clipping against exploding gradients (Keras ``clipvalue`` / ``clipnorm`` / global).

- value:       g ← clamp(g, −c, c) element-wise (may change the gradient's direction):
  ``[0.9, 100]`` → ``[0.9, 1.0]`` at c = 1.
- norm:        each gradient tensor on its own, g ← g · c / max(‖g‖₂, c) (Keras ``clipnorm``,
  keeps the direction): ``[0.9, 100]`` → ``[0.00899964, 0.9999595]`` at c = 1.
- global norm: all gradients together, g ← g · c / max(‖(g₁, …, gₙ)‖₂, c).

All three use torch's multi-tensor (foreach) kernels and never read a value back to the host.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["clip_gradients"]


def _threshold(field: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ConfigError(f"optimizer.{field}", value, "a number >= 0 (0 turns it off)")
    return float(value)


def clip_gradients(params: Iterable[torch.Tensor] | nn.Module, *, clip_value: float = 0.0,
                   clip_norm: float = 0.0, clip_global_norm: float = 0.0,
                   ) -> torch.Tensor | None:
    """Clip the ``.grad`` of ``params`` in place; 0 turns a kind of clipping off.

    When several are set they apply in the order value, per-tensor norm, global norm.

    Args:
        params: a module or an iterable of parameters (those without a gradient are skipped).
        clip_value: c for element-wise clipping to [−c, c] (default 0 = off).
        clip_norm: c for per-tensor L2-norm clipping, like Keras ``clipnorm`` (default 0).
        clip_global_norm: c for clipping the norm of all gradients together (default 0).

    Returns:
        The global gradient norm before clipping (a 0-dim tensor on the gradients' device)
        when ``clip_global_norm`` > 0, else None.

    Raises:
        ConfigError: ``optimizer.clip_value`` / ``clip_norm`` / ``clip_global_norm`` < 0.

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([0.9, 100.0])
        >>> clip_gradients([p], clip_norm=1.0); p.grad
        tensor([0.0090, 1.0000])
    """
    value = _threshold("clip_value", clip_value)
    norm = _threshold("clip_norm", clip_norm)
    global_norm = _threshold("clip_global_norm", clip_global_norm)
    if isinstance(params, nn.Module):
        params = params.parameters()
    params = [p for p in params if p.grad is not None]
    if not params:
        return None
    if value > 0:
        nn.utils.clip_grad_value_(params, value, foreach=True)
    if norm > 0:
        grads = [p.grad for p in params]
        # scale_i = c / max(‖g_i‖, c), computed as lists of 0-dim tensors: no host sync.
        scales = torch._foreach_maximum(torch._foreach_norm(grads), norm)
        torch._foreach_reciprocal_(scales)
        torch._foreach_mul_(scales, norm)
        torch._foreach_mul_(grads, scales)
    if global_norm > 0:
        return nn.utils.clip_grad_norm_(params, global_norm, foreach=True)
    return None
