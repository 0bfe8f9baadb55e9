"""Lean CPU steps for the optimizers torch has no fused kernel for (RMSProp, AdaMax, NAdam):
torch's update, on optimizer state kept in one flat buffer per kind.

On a CPU torch's multi-tensor ("foreach") kernels loop over the parameters one tensor at a
time, and its step reads every parameter's step counter back to the host: for a network of a
few hundred thousand weights those calls cost more than the arithmetic (RMSProp, AdaMax and
NAdam epochs took 1.6-1.8x as long as SGD's). Here each kind of state (e.g. the running mean
of g²) is one contiguous buffer, and a step is one copy of the gradients into a flat buffer, a
few whole-buffer operations in torch's order, and one multi-tensor add into the parameters.
The step counter is a host number.

The per-parameter state entries are views into the flat buffers, in torch's layout (``step``,
``exp_avg``, ...), so a state_dict saved by either implementation loads into the other.
torch's own step runs instead (on the same state) under ``torch.compile``, off the CPU, for a
tensor learning rate, for options the fast path does not cover, or when only some parameters
have a gradient.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["LeanStep", "FlatState"]


def _views(flat: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views of ``flat`` shaped like each parameter, back to back."""
    out, at = [], 0
    for p in params:
        n = p.numel()
        out.append(flat[at:at + n].view(p.shape))
        at += n
    return out


class FlatState:
    """One parameter group's optimizer state in flat buffers, with torch's per-parameter views.

    Attributes:
        params: the parameters, in the group's order.
        buffers: state key → flat buffer of every parameter's elements (``exp_avg``, ...).
        scalars: state key → one value per parameter (``step``, ``mu_product``).
        grad, work: flat scratch buffers (the gradient, a denominator); ``views[key]`` shapes
            any of them like the parameters.
        t: the step count, the same for every parameter (a host number).
    """

    def __init__(self, params: list[torch.Tensor], state: Any, buffers: dict[str, float],
                 scalars: dict[str, float]):
        self.params = params
        dtype = params[0].dtype
        total = sum(p.numel() for p in params)
        self.grad = torch.empty(total, dtype=dtype)
        self.work = torch.empty(total, dtype=dtype)
        self.buffers: dict[str, torch.Tensor] = {}
        self.views: dict[str, list[torch.Tensor]] = {"grad": _views(self.grad, params),
                                                     "work": _views(self.work, params)}
        for key, fill in buffers.items():
            flat = torch.zeros(total, dtype=dtype) if fill == 0 else torch.full((total,), fill,
                                                                                dtype=dtype)
            views = _views(flat, params)
            for p, v in zip(params, views, strict=True):
                if key in state[p]:     # a loaded checkpoint or torch's own step
                    v.copy_(state[p][key])
                state[p][key] = v
            self.buffers[key], self.views[key] = flat, views
        self.scalars: dict[str, torch.Tensor] = {}
        for key, fill in scalars.items():
            old = [state[p].get(key) for p in params]
            like = next((o for o in old if isinstance(o, torch.Tensor)), None)
            sdtype = like.dtype if like is not None else torch.get_default_dtype()
            flat = torch.tensor([fill if o is None else float(o) for o in old], dtype=sdtype)
            for i, p in enumerate(params):
                state[p][key] = flat[i]
            self.scalars[key] = flat
            self.views[key] = [state[p][key] for p in params]
        steps = self.scalars["step"]
        self.t = float(steps[0])      # host sync: none — CPU tensors, read once per rebuild
        self.uniform = bool((steps == steps[0]).all())

    def current(self, params: list[torch.Tensor], state: Any) -> bool:
        """Whether these are still the group's parameters and their state entries ours."""
        if len(params) != len(self.params) or any(
                p is not q for p, q in zip(params, self.params, strict=True)):
            return False
        return all(state[p].get(key) is v for key in self.buffers
                   for p, v in zip(params, self.views[key], strict=True))

    def load_grads(self, params: list[torch.Tensor], weight_decay: float) -> torch.Tensor:
        """The flat gradient, plus λθ for (coupled) L2 weight decay."""
        views = self.views["grad"]
        torch._foreach_copy_(views, [p.grad for p in params])
        if weight_decay:
            torch._foreach_add_(views, params, alpha=weight_decay)
        return self.grad

    def addcdiv(self, numerator: str, denominator: str, value: float) -> None:
        """θ ← θ + value · a ⊘ b for two flat buffers named by key (torch's last operation)."""
        torch._foreach_addcdiv_(self.params, self.views[numerator], self.views[denominator],
                                value=value)


class LeanStep:
    """Mixin for a ``torch.optim`` class: the flat CPU step where it applies, torch's otherwise.

    A subclass names its state (``_buffers``: per-element keys and their initial value,
    ``_scalars``: per-parameter numbers), says which of its options the fast path covers
    (``_lean_group``) and writes the update on flat tensors (``_flat_step``).
    """

    _buffers: dict[str, float] = {}
    _scalars: dict[str, float] = {"step": 0.0}

    def _lean_group(self, group: dict[str, Any]) -> bool:
        return not (group.get("maximize") or group.get("capturable")
                    or group.get("differentiable") or isinstance(group["lr"], torch.Tensor)
                    or group.get("foreach") is False)   # False: torch's per-tensor loop

    def _flat_step(self, group: dict[str, Any], flat: FlatState) -> None:
        raise NotImplementedError

    def _lean_states(self) -> list[tuple[dict[str, Any], FlatState]] | None:
        """Every group with its flat state, or None when torch's step must run."""
        if torch.compiler.is_compiling():
            return None
        cache: dict[int, FlatState] = self.__dict__.setdefault("_flat_states", {})
        out = []
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            if not params:
                continue
            if not self._lean_group(group):
                return None
            flat = cache.get(i)
            if flat is None or not flat.current(params, self.state):
                p0 = params[0]
                if not all(p.grad is not None and p.device.type == "cpu" and p.dtype == p0.dtype
                           and not p.is_complex() and not p.grad.is_sparse for p in params):
                    return None
                flat = cache[i] = FlatState(list(params), self.state, self._buffers,
                                            self._scalars)
            if not flat.uniform:
                return None
            out.append((group, flat))
        return out

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lean = self._lean_states()
        if lean is None or not all(p.grad is not None for g, _ in lean for p in g["params"]):
            self.__dict__.pop("_flat_states", None)   # torch's step moves the counters
            out = super().step()  # type: ignore[misc]
            return loss if closure is not None else out
        for group, flat in lean:
            flat.t += 1.0
            flat.scalars["step"].add_(1.0)
            self._flat_step(group, flat)
        return loss
