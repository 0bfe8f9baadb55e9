"""Optimizer registry and factory: the faster optimizers of the chapter on top of torch.optim.

Hyperparameters are named as in the chapter (``lr`` = η, ``momentum`` = β, ``beta_1`` = β1,
``beta_2`` = β2, ``rho`` = ρ, ``epsilon`` = ε). Every optimizer accepts all of them and
silently ignores those it does not use, because a recipe always carries the whole set.
Update rules (g = ∇θ J(θ)):

- ``sgd``:       θ ← θ − η g
- ``momentum``:  m ← β m − η g;  θ ← θ + m
  (torch keeps b ← β b + g and does θ ← θ − η b, i.e. m = −η b: identical while η is fixed.
  Under a schedule they differ: torch rescales the whole velocity by the new η. The default
  ``momentum_form="pytorch"`` uses torch's fused ``SGD``; ``momentum_form="keras"`` runs the
  chapter's and Keras' form exactly, see :mod:`trainwell.optim.velocity`)
- ``nesterov``:  m ← β m − η ∇J(θ + β m);  θ ← θ + m
  (torch uses the equivalent "look-ahead parameter" form θ ← θ − η (g + β b))
- ``adagrad``:   s ← s + g⊗g;  θ ← θ − η g ⊘ (√s + ε)
  (the chapter writes √(s + ε); torch adds ε outside the root and starts s at
  ``initial_accumulator`` = 0.1 like Keras, so the two agree to ~ε/√s)
- ``rmsprop``:   s ← ρ s + (1 − ρ) g⊗g;  θ ← θ − η g ⊘ (√s + ε)
- ``adam``:      m ← β1 m + (1 − β1) g;  s ← β2 s + (1 − β2) g⊗g;
  m̂ = m/(1 − β1ᵗ);  ŝ = s/(1 − β2ᵗ);  θ ← θ − η m̂ ⊘ (√ŝ + ε)
  (the chapter's m carries the opposite sign, m ← β1 m − (1 − β1) g, θ ← θ + η m̂ ⊘ …)
- ``adamax``:    like Adam with s ← max(β2 s, |g|) and θ ← θ − η/(1 − β1ᵗ) · m ⊘ (s + ε)
- ``nadam``:     Adam plus the Nesterov trick (Dozat's momentum schedule, as in Keras)
- ``adamw``:     Adam with decoupled weight decay θ ← θ − η λ θ (``weight_decay`` = λ)

``weight_decay`` on the other optimizers is torch's coupled L2 term (g ← g + λ θ).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainwell import checks
from trainwell.errors import ConfigError, TrainwellWarning
from trainwell.optim.lean_nadam import LeanNAdam
from trainwell.optim.lean_optimizers import LeanAdamax, LeanRMSprop
from trainwell.optim.velocity import MOMENTUM_FORMS, VelocitySGD
from trainwell.registry import Registry

__all__ = ["OPTIMIZERS", "OptimInfo", "make_optimizer", "HYPERPARAMETERS", "MOMENTUM_FORMS",
           "WeightDecayResolutionWarning", "decay_is_below_float32_resolution"]


class WeightDecayResolutionWarning(TrainwellWarning, UserWarning):
    """AdamW's decay step 1 − η·λ rounds to 1 in float32: the weight decay does nothing."""


def decay_is_below_float32_resolution(lr: float, weight_decay: float) -> bool:
    """True when θ·(1 − η·λ) leaves float32 weights unchanged (1 − η·λ rounds to 1.0).

    Example (AdamW at 1e-3 with λ = 1e-5 trains exactly like Adam):
        >>> decay_is_below_float32_resolution(1e-3, 1e-5), decay_is_below_float32_resolution(1e-3, 1e-2)
        (True, False)
    """
    return weight_decay > 0 and float(torch.tensor(1.0 - lr * weight_decay,
                                                   dtype=torch.float32)) == 1.0



@dataclass(frozen=True)
class OptimInfo:
    """Metadata of one registered optimizer (timm ``OptimInfo`` style).

    Attributes:
        name: registry name.
        cls: the torch.optim class underneath.
        description: one line for CLI help and docs.
        takes: the trainwell hyperparameters it uses besides ``lr``.
        fixed: torch keyword arguments that define the variant (e.g. ``nesterov=True``).
        update_rule: the update rule as written in the chapter.
        fused: torch has a fused (single-kernel) implementation of this optimizer.
    """

    name: str
    cls: type[torch.optim.Optimizer]
    description: str
    takes: tuple[str, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    update_rule: str = ""
    fused: bool = False

    @property
    def takes_momentum(self) -> bool:
        return "momentum" in self.takes

    @property
    def takes_betas(self) -> bool:
        return "beta_1" in self.takes

    def defaults(self) -> dict[str, float]:
        """The default value of every hyperparameter this optimizer uses."""
        return {k: HYPERPARAMETERS[k] for k in ("lr", *self.takes)}

    def torch_kwargs(self, hp: Mapping[str, float]) -> dict[str, Any]:
        """Translate trainwell hyperparameter names into this class's keyword arguments."""
        kw: dict[str, Any] = dict(self.fixed)
        if "momentum" in self.takes:
            kw["momentum"] = hp["momentum"]
        if "beta_1" in self.takes:
            kw["betas"] = (hp["beta_1"], hp["beta_2"])
        if "rho" in self.takes:
            kw["alpha"] = hp["rho"]
        if "epsilon" in self.takes:
            kw["eps"] = hp["epsilon"]
        if "initial_accumulator" in self.takes:
            kw["initial_accumulator_value"] = hp["initial_accumulator"]
        kw["weight_decay"] = hp["weight_decay"]
        return kw


def _check(name: str, value: object) -> float:
    return checks.check_field(f"optimizer.{name}", value)


def _param_groups(params: Any, lr: float) -> list[dict[str, Any]]:
    """Normalise tensors / a module / param-group dicts into groups with their own lr."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    items = list(params)
    if not items:
        raise ConfigError("optimizer.params", [], "at least one parameter to optimize")
    if not isinstance(items[0], Mapping):
        return [{"params": items, "lr": lr, "lr_scale": 1.0}]
    groups = []
    for group in items:
        g = dict(group)
        scale = g.get("lr_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0:
            raise ConfigError("optimizer.lr_scale", scale, "a number >= 0 (per-group LR multiplier)")
        g["lr_scale"] = float(scale)
        # A group's lr is the base lr times its scale, unless the group fixes its own lr.
        g.setdefault("lr", lr * g["lr_scale"])
        g["params"] = list(g["params"]) if not isinstance(g["params"], torch.Tensor) else [g["params"]]
        groups.append(g)
    return groups


def make_optimizer(params: Any, name: str = "sgd", *, lr: float = 0.01, momentum: float = 0.9,
                   beta_1: float = 0.9, beta_2: float = 0.999, rho: float = 0.9,
                   epsilon: float = 1e-7, weight_decay: float = 0.0,
                   initial_accumulator: float = 0.1, foreach: bool | None = None,
                   momentum_form: str = "pytorch") -> torch.optim.Optimizer:
    """Build a registered optimizer over ``params`` (see the module docstring for update rules).

    Args:
        params: a module, an iterable of tensors, or a list of param-group dicts; a group may
            carry ``lr_scale`` (its lr is ``lr * lr_scale``, e.g. 0.1 for reused layers) or
            its own ``lr``.
        name: one of ``OPTIMIZERS.names()`` (default ``"sgd"``).
        lr: learning rate η > 0 (default 0.01).
        momentum: β in [0, 1) for ``momentum`` / ``nesterov`` (default 0.9).
        beta_1, beta_2: Adam-family decay rates in [0, 1) (defaults 0.9, 0.999).
        rho: RMSProp decay ρ in [0, 1) (default 0.9).
        epsilon: smoothing term ε > 0 (Keras's default).
        weight_decay: λ ≥ 0; decoupled for ``adamw``, L2 added to g otherwise (default 0).
        initial_accumulator: AdaGrad's starting s (default 0.1, as in Keras).
        foreach: None (default) uses torch's fused single-kernel update where it has one (SGD
            family, AdaGrad, Adam, AdamW) and its multi-tensor kernels otherwise; True forces
            the multi-tensor kernels, False the per-tensor loop.
        momentum_form: ``"pytorch"`` (default: torch's SGD, b ← βb + g, θ ← θ − ηb) or
            ``"keras"`` (the chapter's m ← βm − ηg, θ ← θ + m) for ``momentum``/``nesterov``;
            the same at a constant rate, different under a schedule.

    Hyperparameters the chosen optimizer does not use are ignored without validation.

    Raises:
        ConfigError: ``optimizer.name`` / ``optimizer.<field>`` for bad names or values.

    Warns:
        WeightDecayResolutionWarning: AdamW whose decay step 1 − η·λ rounds to 1 in float32.

    Example:
        >>> opt = make_optimizer(nn.Linear(2, 1), "nesterov", lr=0.01, momentum=0.9)
        >>> type(opt).__name__, opt.param_groups[0]["nesterov"]
        ('SGD', True)
    """
    info: OptimInfo = OPTIMIZERS.get(name, "optimizer.name").obj
    given = {"lr": lr, "momentum": momentum, "beta_1": beta_1, "beta_2": beta_2, "rho": rho,
             "epsilon": epsilon, "weight_decay": weight_decay,
             "initial_accumulator": initial_accumulator}
    hp = {k: _check(k, given[k]) for k in ("lr", *info.takes)}
    hp.setdefault("weight_decay", 0.0)
    if info.name == "nesterov" and hp["momentum"] <= 0:
        raise ConfigError("optimizer.momentum", momentum, "a number in (0, 1) for nesterov")
    form = momentum_form.strip().lower() if isinstance(momentum_form, str) else momentum_form
    if form not in MOMENTUM_FORMS:
        raise ConfigError("optimizer.momentum_form", momentum_form, MOMENTUM_FORMS)
    if info.name == "adamw" and decay_is_below_float32_resolution(hp["lr"], hp["weight_decay"]):
        warnings.warn(
            f"optimizer.weight_decay: AdamW's decay step 1 − lr·weight_decay = "
            f"1 − {hp['lr']:g}·{hp['weight_decay']:g} rounds to 1 in float32, so the weights "
            "are never decayed and this trains exactly like Adam; use a weight decay of about "
            "1e-4 to 1e-2 (torch's default is 1e-2)", WeightDecayResolutionWarning, stacklevel=2)
    groups = _param_groups(params, hp["lr"])
    kwargs = info.torch_kwargs(hp)
    if form == "keras" and info.cls is torch.optim.SGD:
        return VelocitySGD(groups, lr=hp["lr"], momentum=kwargs.get("momentum", 0.0),
                           nesterov=kwargs.get("nesterov", False),
                           weight_decay=kwargs["weight_decay"])
    if foreach is None and info.fused and _fusable(groups):
        kwargs["fused"] = True       # one kernel per step: ~2x faster than foreach on the CPU
    else:
        kwargs["foreach"] = True if foreach is None else bool(foreach)
    return info.cls(groups, lr=hp["lr"], **kwargs)


def _fusable(groups: list[dict[str, Any]]) -> bool:
    """torch's fused kernels take floating-point tensors on the CPU, CUDA or MPS."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda", "mps")
               for g in groups for p in g["params"])


#: Every hyperparameter name make_optimizer understands, with its default (read from its
#: signature, the one place they are written; the recipe's optimizer defaults come from here).
HYPERPARAMETERS: dict[str, float] = {
    p.name: p.default for p in inspect.signature(make_optimizer).parameters.values()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("foreach", "momentum_form")}


OPTIMIZERS = Registry("optimizer")


def _add(info: OptimInfo, aliases: tuple[str, ...] = ()) -> None:
    OPTIMIZERS.register(info.name, info, description=info.description, aliases=aliases,
                        takes=info.takes, takes_momentum=info.takes_momentum,
                        takes_betas=info.takes_betas, defaults=info.defaults(),
                        update_rule=info.update_rule)


_add(OptimInfo("sgd", torch.optim.SGD, "plain (mini-batch) gradient descent",
               ("weight_decay",), {"momentum": 0.0}, "θ ← θ − η∇J(θ)", fused=True),
     aliases=("gd",))
_add(OptimInfo("momentum", torch.optim.SGD, "SGD with momentum β (Polyak)",
               ("momentum", "weight_decay"), {}, "m ← βm − η∇J(θ); θ ← θ + m", fused=True))
_add(OptimInfo("nesterov", torch.optim.SGD, "Nesterov accelerated gradient",
               ("momentum", "weight_decay"), {"nesterov": True},
               "m ← βm − η∇J(θ + βm); θ ← θ + m", fused=True), aliases=("nag",))
_add(OptimInfo("adagrad", torch.optim.Adagrad, "AdaGrad: per-parameter rates from the sum of g²",
               ("epsilon", "initial_accumulator", "weight_decay"), {},
               "s ← s + g⊗g; θ ← θ − η g ⊘ √(s + ε)", fused=True))
_add(OptimInfo("rmsprop", LeanRMSprop, "RMSProp: exponentially decaying mean of g² (ρ)",
               ("rho", "epsilon", "weight_decay"), {},
               "s ← ρs + (1 − ρ) g⊗g; θ ← θ − η g ⊘ √(s + ε)"))
_add(OptimInfo("adam", torch.optim.Adam, "Adam: momentum + RMSProp with bias correction",
               ("beta_1", "beta_2", "epsilon", "weight_decay"), {},
               "m ← β1m − (1 − β1)g; s ← β2s + (1 − β2)g⊗g; m̂ = m/(1 − β1ᵗ); "
               "ŝ = s/(1 − β2ᵗ); θ ← θ + η m̂ ⊘ √(ŝ + ε)", fused=True))
_add(OptimInfo("adamax", LeanAdamax, "AdaMax: Adam with the ℓ∞ norm of past gradients",
               ("beta_1", "beta_2", "epsilon", "weight_decay"), {},
               "s ← max(β2s, |g|); θ ← θ + η m̂ ⊘ s"))
_add(OptimInfo("nadam", LeanNAdam, "Nadam: Adam plus the Nesterov trick",
               ("beta_1", "beta_2", "epsilon", "weight_decay"), {},
               "Adam with the momentum step taken at the look-ahead point"))
_add(OptimInfo("adamw", torch.optim.AdamW, "AdamW: Adam with decoupled weight decay λ",
               ("beta_1", "beta_2", "epsilon", "weight_decay"), {},
               "Adam step, then θ ← θ − ηλθ", fused=True))
