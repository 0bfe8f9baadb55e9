"""SGD with momentum in the chapter's (and Keras') form: the velocity carries the learning rate.

The chapter writes momentum optimization as

    m ← β m − η ∇J(θ);   θ ← θ + m                     (Nesterov: θ ← θ + β m − η ∇J(θ))

torch's ``SGD`` keeps b ← β b + g and steps θ ← θ − η b. With a constant η the two are the same
(m = −η b). When η changes — any schedule, and 1cycle cycles β as well — they differ: torch
applies the *new* η to the whole accumulated velocity, the chapter's form only to the new
gradient, so a rate drop takes effect gradually. :class:`VelocitySGD` is the chapter's form,
selected with ``make_optimizer(..., momentum_form="keras")`` (recipe:
``optimizer.momentum_form = "keras"``).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["VelocitySGD", "MOMENTUM_FORMS"]

#: ``pytorch``: b ← βb + g, θ ← θ − ηb (torch.optim.SGD); ``keras``: m ← βm − ηg, θ ← θ + m.
MOMENTUM_FORMS = ("pytorch", "keras")


class VelocitySGD(torch.optim.Optimizer):
    """m ← β m − η (g + λ θ);  θ ← θ + m  (Nesterov: θ ← θ + β m − η (g + λ θ)).

    Args:
        params: parameters or param groups.
        lr: η (a float or a 0-dim tensor, so a compiled step need not recompile).
        momentum: β in [0, 1).
        nesterov: take the look-ahead step (Keras ``SGD(nesterov=True)``).
        weight_decay: λ, coupled L2 as in torch's SGD (default 0).

    Example:
        >>> p = torch.nn.Parameter(torch.ones(1)); sgd = VelocitySGD([p], lr=0.1, momentum=0.9)
        >>> p.grad = torch.ones(1); sgd.step(); sgd.step(); round(p.item(), 6)
        0.71
    """

    def __init__(self, params: Any, lr: float = 0.01, momentum: float = 0.9,
                 nesterov: bool = False, weight_decay: float = 0.0, foreach: bool | None = None):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        foreach=foreach)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            velocity = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocity.append(state["velocity"])
            beta, lr = group["momentum"], group["lr"]
            step = torch._foreach_mul(grads, lr)            # η g (η may be a tensor)
            torch._foreach_mul_(velocity, beta)
            torch._foreach_sub_(velocity, step)             # m ← βm − ηg
            if group["nesterov"]:
                torch._foreach_add_(params, velocity, alpha=beta)
                torch._foreach_sub_(params, step)           # θ ← θ + βm − ηg
            else:
                torch._foreach_add_(params, velocity)       # θ ← θ + m
        return loss
