"""The optimizer's hyperparameters as inputs of the compiled step, so a schedule never recompiles.

A compiled graph bakes every Python number it reads in as a constant: an lr or a momentum that a
schedule changes every step (1cycle changes both) would mean a new graph every step. But
torch's update rules also take 0-dim tensors, and a tensor is an input of the graph whatever it
holds. :class:`GraphHypers` swaps them in around each compiled call:

- the lr of every optimizer becomes a 0-dim tensor;
- the Adam family (Adam, AdamW, AdaMax, NAdam) takes β1 as a tensor in its multi-tensor
  ``capturable`` form, so the group is switched to that form for the call; β2, which no
  schedule changes, stays a number;
- a group built with torch's fused kernel (SGD, AdaGrad, Adam, AdamW: the fastest form op by op)
  runs its multi-tensor form inside the graph: the compiler does not trace into a fused kernel
  (it would split the step in two, with the update run op by op between), and inductor fuses
  the multi-tensor update into the step's own generated code;
- the chapter's momentum form (:class:`~trainwell.optim.velocity.VelocitySGD`) takes a tensor
  momentum β (not with Nesterov, whose look-ahead needs a number);
- torch's ``SGD`` branches on its momentum, so a tensor cannot go there: the float is left to
  the compiler, which makes it an input of a second graph the first time it changes.

Afterwards every group gets its own values back: outside the compiled call — eager steps,
``state_dict``, checkpoints, logging — the optimizer is exactly as it was built, with float
hyperparameters. Any other hyperparameter is a constant of the graph; when it changes, that
step runs op by op (:meth:`GraphHypers.swap_in` returns None) rather than recompiling.
"""

from __future__ import annotations

from typing import Any

import torch

from trainwell.optim.velocity import VelocitySGD

__all__ = ["GraphHypers"]

# Classes whose multi-tensor update takes tensor betas when ``capturable`` (torch 2.13).
_CAPTURABLE_BETAS: tuple[type, ...] = (torch.optim.Adam, torch.optim.Adamax, torch.optim.NAdam,
                                        torch.optim.RAdam)
# Keys the swap itself sets (the form of the update), never compared as graph constants.
_FORM_KEYS = ("capturable", "foreach", "fused")


def _tensor_keys(optimizer: torch.optim.Optimizer) -> tuple[str, ...]:
    """The hyperparameters of ``optimizer`` that can enter the graph as tensors."""
    if isinstance(optimizer, _CAPTURABLE_BETAS):
        return ("lr", "betas")
    if isinstance(optimizer, VelocitySGD) and not any(g["nesterov"]
                                                      for g in optimizer.param_groups):
        return ("lr", "momentum")  # m ← βm − ηg takes a tensor β (Nesterov's alpha=β does not)
    return ("lr",)


class GraphHypers:
    """Swap an optimizer's changing hyperparameters into 0-dim tensors around a compiled call.

    Example:
        >>> p = torch.nn.Parameter(torch.ones(2))
        >>> opt = torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.99))
        >>> hypers = GraphHypers(opt, p.device)
        >>> saved = hypers.swap_in()
        >>> type(opt.param_groups[0]["lr"]).__name__, opt.param_groups[0]["capturable"]
        ('Tensor', True)
        >>> hypers.swap_out(saved); opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]
        (0.1, (0.9, 0.99))
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device):
        self.optimizer = optimizer
        self.device = device
        self.keys = _tensor_keys(optimizer)
        # torch's SGD branches on its momentum (a tensor cannot go there): the compiler makes
        # the float an input of a second graph the first time a schedule changes it.
        self.dynamo_keys = ("momentum",) if type(optimizer) is torch.optim.SGD else ()
        self._form = {"capturable": True, "foreach": True} if "betas" in self.keys else {}
        self._tensors: list[dict[str, Any]] | None = None
        self._filled: list[dict[str, Any]] = []
        self._constants: list[list[Any]] | None = None

    def _tensor(self, value: float) -> torch.Tensor:
        return torch.tensor(float(value), dtype=torch.float32, device=self.device)

    def _make_tensors(self, groups: list[dict[str, Any]]) -> None:
        self._tensors, self._filled = [], []
        for g in groups:
            own = {}
            for k in self.keys:
                v = g.get(k)
                if k == "betas":  # β1 (1cycle cycles it); β2 stays a constant of the graph
                    own[k] = self._tensor(v[0])
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    own[k] = self._tensor(v)
            self._tensors.append(own)
            self._filled.append({})

    def _constants_of(self, groups: list[dict[str, Any]]) -> list[list[Any]]:
        skip = ("params", *self.keys, *_FORM_KEYS, *self.dynamo_keys)
        return [[v for k, v in g.items() if k not in skip] + [g.get("betas", (0, 0))[1]]
                for g in groups]

    def swap_in(self) -> list[dict[str, Any]] | None:
        """Put the tensors into the groups; returns the groups' own values for
        :meth:`swap_out`, or None (nothing changed) when a constant of the graph changed."""
        groups = self.optimizer.param_groups
        constants = self._constants_of(groups)
        if self._constants is None:
            self._constants = constants
        elif constants != self._constants:
            return None
        if self._tensors is None or len(self._tensors) != len(groups):
            self._make_tensors(groups)
        saved = []
        for g, own, filled in zip(groups, self._tensors, self._filled, strict=True):
            keep = {}
            for k, t in own.items():
                v = g[k]
                keep[k] = v
                if filled.get(k) != v:  # write only what the schedule changed
                    t.fill_(float(v[0] if k == "betas" else v))
                    filled[k] = v
                g[k] = (t, v[1]) if k == "betas" else t
            form = dict(self._form)
            if g.get("fused"):  # the compiler does not trace into a fused kernel (a graph
                form.update(fused=False, foreach=True)  # break): inductor fuses the
            for k, v in form.items():                   # multi-tensor form itself
                keep[k] = g.get(k)
                g[k] = v
            saved.append(keep)
        return saved

    def dynamo_values(self) -> tuple:
        """The hyperparameters the compiler holds as numbers (its guards check them)."""
        if not self.dynamo_keys:
            return ()
        return tuple(g.get(k) for g in self.optimizer.param_groups for k in self.dynamo_keys)

    def swap_out(self, saved: list[dict[str, Any]]) -> None:
        """Give every group its own values back (floats, the form it was built with)."""
        for g, keep in zip(self.optimizer.param_groups, saved, strict=True):
            g.update(keep)
