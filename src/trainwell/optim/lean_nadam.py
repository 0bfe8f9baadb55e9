"""NAdam with the lean CPU step of :mod:`trainwell.optim.lean`: the same update as
``torch.optim.NAdam`` in fewer, larger operations.

torch's multi-tensor NAdam reads each parameter's step counter and momentum product back
(``.item()`` per tensor) and loops over the parameters in every operation; on a CPU those
small calls cost about as much as the update itself. Here the counters are host numbers and
the update is a handful of operations on flat buffers. The state dict is torch's (``step``,
``mu_product``, ``exp_avg``, ``exp_avg_sq`` per parameter), so checkpoints load either way.
Other devices, ``torch.compile`` tracing and the options this fast path does not cover
(decoupled decay, maximize, capturable, differentiable, complex parameters) use torch's own
implementation.
"""

from __future__ import annotations

from typing import Any

import torch

from trainwell.optim.lean import FlatState, LeanStep

__all__ = ["LeanNAdam"]


class LeanNAdam(LeanStep, torch.optim.NAdam):
    """``torch.optim.NAdam`` (Dozat's momentum schedule, as in Keras), faster on the CPU.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(2)); nadam = LeanNAdam([p], lr=0.1)
        >>> p.grad = torch.ones(2); nadam.step(); p.detach().lt(1).all().item()
        True
    """

    _buffers = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
    _scalars = {"step": 0.0, "mu_product": 1.0}

    def _lean_group(self, group: dict[str, Any]) -> bool:
        return super()._lean_group(group) and not group["decoupled_weight_decay"]

    def _flat_step(self, group: dict[str, Any], flat: FlatState) -> None:
        beta1, beta2 = group["betas"]
        lr, t, decay = group["lr"], flat.t, group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * decay))
        products = flat.scalars["mu_product"].mul_(mu)
        mu_product = float(products[0])     # host sync: none — a CPU tensor (torch reads it too)
        g = flat.load_grads(group["params"], group["weight_decay"])
        exp_avg, exp_avg_sq = flat.buffers["exp_avg"], flat.buffers["exp_avg_sq"]
        exp_avg.lerp_(g, 1.0 - beta1)                                 # m ← β1 m + (1 − β1) g
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)     # s ← β2 s + (1 − β2) g²
        denom = torch.sqrt(exp_avg_sq, out=flat.work)                 # √(s / (1 − β2ᵗ)) + ε
        denom.div_((1.0 - beta2 ** t) ** 0.5).add_(group["eps"])
        flat.addcdiv("grad", "work", -lr * (1.0 - mu) / (1.0 - mu_product))
        flat.addcdiv("exp_avg", "work", -lr * mu_next / (1.0 - mu_product * mu_next))
