"""RMSProp and AdaMax with the lean CPU step of :mod:`trainwell.optim.lean`: torch's update
rules (pinned against the chapter's formulas in the tests), in fewer, larger operations."""

from __future__ import annotations

from typing import Any

import torch

from trainwell.optim.lean import FlatState, LeanStep

__all__ = ["LeanRMSprop", "LeanAdamax"]


class LeanRMSprop(LeanStep, torch.optim.RMSprop):
    """``torch.optim.RMSprop`` (s ← ρs + (1 − ρ)g⊗g; θ ← θ − η g ⊘ (√s + ε)), faster on the CPU.

    Momentum and the centered variant run torch's own step.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(2)); rmsprop = LeanRMSprop([p], lr=0.1)
        >>> p.grad = torch.ones(2); rmsprop.step(); p.detach().lt(1).all().item()
        True
    """

    _buffers = {"square_avg": 0.0}

    def _lean_group(self, group: dict[str, Any]) -> bool:
        return super()._lean_group(group) and not group["momentum"] and not group["centered"]

    def _flat_step(self, group: dict[str, Any], flat: FlatState) -> None:
        alpha, lr = group["alpha"], group["lr"]
        g = flat.load_grads(group["params"], group["weight_decay"])
        square_avg = flat.buffers["square_avg"]
        square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        torch.sqrt(square_avg, out=flat.work).add_(group["eps"])      # √s + ε
        flat.addcdiv("grad", "work", -lr)                             # θ ← θ − η g ⊘ (√s + ε)


class LeanAdamax(LeanStep, torch.optim.Adamax):
    """``torch.optim.Adamax`` (s ← max(β2 s, |g| + ε); θ ← θ − η/(1 − β1ᵗ) · m ⊘ s), faster
    on the CPU.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(2)); adamax = LeanAdamax([p], lr=0.1)
        >>> p.grad = torch.ones(2); adamax.step(); p.detach().lt(1).all().item()
        True
    """

    _buffers = {"exp_avg": 0.0, "exp_inf": 0.0}

    def _flat_step(self, group: dict[str, Any], flat: FlatState) -> None:
        beta1, beta2 = group["betas"]
        g = flat.load_grads(group["params"], group["weight_decay"])
        exp_avg, exp_inf = flat.buffers["exp_avg"], flat.buffers["exp_inf"]
        exp_avg.lerp_(g, 1 - beta1)                                   # m ← β1 m + (1 − β1) g
        exp_inf.mul_(beta2)
        torch.maximum(exp_inf, g.abs_().add_(group["eps"]), out=exp_inf)
        flat.addcdiv("exp_avg", "exp_inf", -(group["lr"] / (1 - beta1 ** flat.t)))
