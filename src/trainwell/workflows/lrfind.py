"""The learning-rate range test ("LR finder") and the automatic ``max_lr`` of 1cycle.

The test trains for a few hundred steps while growing the learning rate exponentially from a
tiny value to a huge one, records the loss, and stops once the loss blows up. The loss curve
against the learning rate (log scale) shows where training is fastest and where it diverges;
the chapter's advice is to train a bit below the rate where the loss turns up — about ten times
lower. Model, optimizer and random-number state are restored afterwards, so the finder can
run right before a real training run.

Example:
    >>> result = find_lr(model, x, y, optimizer="nadam", batch_size=64)   # doctest: +SKIP
    >>> result.suggestion, result.rule                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.workflows.compose import (
    build_model_from_recipe,
    load_splits,
    resolved_task,
    wants_auto_max_lr,
)

__all__ = ["LRFindResult", "RULES", "find_lr", "lr_find_recipe", "resolve_auto_max_lr",
           "plot_lr_find", "suggest_lr", "wants_auto_max_lr", "record_lr_find"]

RULES = {
    "min/10": "one tenth of the learning rate at which the smoothed loss is lowest "
              "(the chapter's rule: train about 10 times below the rate where the loss turns up)",
    "steepest": "the learning rate where the smoothed loss falls fastest "
                "(steepest negative slope of loss against log learning rate, before the minimum)",
}

# Loss values are read back in chunks: one host sync per chunk, not per step.
_CHECK_EVERY = 10


@dataclass
class LRFindResult:
    """What the LR range test measured and what it suggests.

    Attributes:
        lrs: learning rate of each step taken (before the stop).
        losses: exponentially smoothed, bias-corrected loss at each step.
        raw_losses: the mini-batch loss at each step.
        suggestion: the suggested maximum learning rate.
        rule: the rule that gave ``suggestion``, as a sentence.
        rule_name: key of the rule in :data:`RULES`.
        min_loss_lr: learning rate at the lowest smoothed loss.
        steepest_lr: learning rate at the steepest descent of the smoothed loss (None if
            too few points).
        diverged: whether the test stopped because the loss exceeded ``diverge`` × best.
        note: a warning when the curve does not support a confident suggestion.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    rule: str
    rule_name: str
    min_loss_lr: float
    steepest_lr: float | None
    diverged: bool
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def sentence(self) -> str:
        """One line for people: the suggestion and why."""
        text = f"suggested max learning rate: {self.suggestion:.3g} — {self.rule}"
        return text + (f" ({self.note})" if self.note else "")

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path


def _smooth(raw: Sequence[float], beta: float) -> list[float]:
    """Exponential moving average with bias correction: s_t = a_t / (1 − βᵗ⁺¹)."""
    out, avg = [], 0.0
    for i, v in enumerate(raw):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)) if beta > 0 else v)
    return out


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], rule: str = "min/10"
               ) -> tuple[float, float, float | None, str]:
    """Apply a suggestion rule to a smoothed loss curve.

    Returns:
        (suggestion, lr at the minimum loss, lr at the steepest descent or None, note)
    """
    if rule not in RULES:
        raise ConfigError("lr_find.rule", rule, list(RULES))
    if not lrs:
        raise ValueError("the LR range test recorded no step")
    i_min = min(range(len(losses)), key=losses.__getitem__)
    min_lr = lrs[i_min]
    steepest = None
    # Slopes over a window of ~5% of the points, skipping the first ones: step-to-step
    # differences of a noisy curve would pick noise, not the descent.
    w = max(1, len(lrs) // 20)
    first = min(10, len(lrs) // 10)
    if i_min - w > first:
        logs = [math.log(lr) for lr in lrs]
        slopes = {i: (losses[i + w] - losses[i]) / (logs[i + w] - logs[i])
                  for i in range(first, i_min - w + 1)}
        i_best = min(slopes, key=slopes.__getitem__)
        steepest = math.exp((logs[i_best] + logs[i_best + w]) / 2)
    note = ""
    if i_min == 0:
        note = "the loss never went down: lower start_lr or check the data and the model"
    elif i_min == len(losses) - 1:
        note = "the loss was still going down at end_lr: raise end_lr or steps"
    if rule == "steepest":
        if steepest is None:
            return min_lr / 10, min_lr, None, (note or "too few points before the minimum; "
                                               "fell back to min/10")
        return steepest, min_lr, steepest, note
    return min_lr / 10, min_lr, steepest, note


def _default_loss(task: str, loss: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from trainwell.tasks import get_task  # the task owns the loss and the target dtype

    return get_task(task, loss=loss).loss


def _make_optimizer(model: nn.Module, optimizer: str | torch.optim.Optimizer,
                    params: dict[str, Any] | None, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    from trainwell.optim import make_optimizer

    accepted = inspect.signature(make_optimizer).parameters
    kwargs = {k: v for k, v in (params or {}).items() if k in accepted and k not in ("lr", "name")}
    return make_optimizer(model.parameters(), optimizer, lr=lr, **kwargs)


def _check_settings(start_lr: float, end_lr: float, steps: int, smooth: float, diverge: float,
                    batch_size: int) -> None:
    if not (isinstance(start_lr, (int, float)) and start_lr > 0):
        raise ConfigError("lr_find.start_lr", start_lr, "a number > 0")
    if not (isinstance(end_lr, (int, float)) and end_lr > start_lr):
        raise ConfigError("lr_find.end_lr", end_lr, f"a number > start_lr ({start_lr})")
    if not (isinstance(steps, int) and steps >= 2):
        raise ConfigError("lr_find.steps", steps, "an integer ≥ 2")
    if not (0 <= smooth < 1):
        raise ConfigError("lr_find.smooth", smooth, "a number with 0 ≤ smooth < 1")
    if not diverge > 1:
        raise ConfigError("lr_find.diverge", diverge, "a number > 1")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ConfigError("lr_find.batch_size", batch_size, "an integer ≥ 1")


def find_lr(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
            optimizer: str | torch.optim.Optimizer = "sgd",
            optimizer_params: dict[str, Any] | None = None,
            task: str = "multiclass", loss: str | Callable | None = None,
            start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200,
            batch_size: int = 32, smooth: float = 0.98, diverge: float = 4.0,
            rule: str = "min/10", seed: int = 0, clip_global_norm: float = 0.0) -> LRFindResult:
    """Run the LR range test and suggest a maximum learning rate.

    At step t (0 … steps−1) the learning rate is ``start_lr · (end_lr/start_lr)^(t/(steps−1))``;
    the loss is smoothed as ``a_t = β·a_{t−1} + (1−β)·loss_t``, ``s_t = a_t/(1−β^{t+1})``;
    the test stops as soon as ``s_t > diverge · min(s)`` or the loss is not finite. The
    default rule (``"min/10"``) suggests one tenth of the rate at the lowest smoothed loss;
    ``"steepest"`` suggests the rate of the steepest descent. Afterwards the model's
    parameters and buffers, the optimizer state (including its learning rate) and the torch
    random-number state are exactly as before.

    Args:
        model: any ``nn.Module`` that maps a batch of ``x`` to outputs (logits).
        x, y: training tensors, on the model's device.
        optimizer: a registered optimizer name (default ``"sgd"``) or a torch optimizer over
            the model's parameters.
        optimizer_params: keyword arguments of ``make_optimizer`` (momentum, beta_1, …).
        task: the task that gives the loss when ``loss`` is not a callable (default multiclass).
        loss: a loss name for the task, or a callable ``loss(outputs, y)``.
        start_lr, end_lr: range of the test (defaults 1e-7, 10).
        steps: number of steps (default 200); batches cycle through shuffled data.
        batch_size: mini-batch size (default 32 — use the size you will train with).
        smooth: β of the smoothing (default 0.98).
        diverge: stop when the smoothed loss exceeds this multiple of the best (default 4).
        rule: ``"min/10"`` (default) or ``"steepest"``, see :data:`RULES`.
        seed: seed of the batch order (default 0).
        clip_global_norm: clip the global gradient norm as training would (0 = off).

    Example:
        >>> model = nn.Linear(3, 1)
        >>> x, y = torch.randn(256, 3), torch.randn(256, 1)
        >>> r = find_lr(model, x, y, loss=nn.functional.mse_loss, steps=50, start_lr=1e-4)
        >>> r.suggestion > 0
        True
    """
    _check_settings(start_lr, end_lr, steps, smooth, diverge, batch_size)
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError("lr_find.data", f"{len(x)} inputs, {len(y)} targets",
                          "the same non-zero number of inputs and targets")
    loss_fn = loss if callable(loss) else _default_loss(task, loss)
    opt = _make_optimizer(model, optimizer, optimizer_params, start_lr)

    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_rng = torch.get_rng_state()
    was_training = model.training
    params = [p for g in opt.param_groups for p in g["params"]]

    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(x)
    bs = min(batch_size, n)
    per_epoch = max(1, n // bs)  # drop the last partial batch: its loss is noisier
    ratio = end_lr / start_lr
    lrs_all = [start_lr * ratio ** (t / (steps - 1)) for t in range(steps)]
    raw_dev = torch.empty(steps, device=x.device)

    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    diverged = False
    try:
        model.train()
        perm = None
        avg, best = 0.0, math.inf
        for t in range(steps):
            if t % per_epoch == 0:
                perm = torch.randperm(n, generator=gen).to(x.device)
            idx = perm[(t % per_epoch) * bs:(t % per_epoch + 1) * bs]
            for g in opt.param_groups:
                g["lr"] = lrs_all[t]
            opt.zero_grad(set_to_none=True)
            batch_loss = loss_fn(model(x[idx]), y[idx])
            batch_loss.backward()
            if clip_global_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, clip_global_norm)
            opt.step()
            raw_dev[t] = batch_loss.detach()
            if (t + 1) % _CHECK_EVERY and t != steps - 1:
                continue
            start = len(raw)
            chunk = raw_dev[start:t + 1].tolist()  # host sync: once per chunk of steps
            stop = False
            for i, v in enumerate(chunk, start=start):
                if not math.isfinite(v):
                    diverged = stop = True
                    break
                avg = smooth * avg + (1 - smooth) * v
                s = avg / (1 - smooth ** (i + 1)) if smooth > 0 else v
                lrs.append(lrs_all[i])
                raw.append(v)
                smoothed.append(s)
                best = min(best, s)
                if i > 0 and s > diverge * best:
                    diverged = stop = True
                    break
            if stop:
                break
    finally:
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        opt.zero_grad(set_to_none=True)
        torch.set_rng_state(saved_rng)
        model.train(was_training)

    if not lrs:
        raise ConfigError("lr_find.start_lr", start_lr,
                          "a rate at which the first loss is finite (the loss was NaN/Inf "
                          "at once: check the data and the model)")
    suggestion, min_lr, steepest, note = suggest_lr(lrs, smoothed, rule)
    return LRFindResult(lrs=lrs, losses=smoothed, raw_losses=raw, suggestion=suggestion,
                        rule=RULES[rule], rule_name=rule, min_loss_lr=min_lr,
                        steepest_lr=steepest, diverged=diverged, note=note,
                        settings=dict(start_lr=start_lr, end_lr=end_lr, steps=steps,
                                      batch_size=bs, smooth=smooth, diverge=diverge,
                                      seed=seed))


def plot_lr_find(result: LRFindResult, path: str | Path, *, title: str = "LR range test") -> Path:
    """Plot the smoothed loss against the learning rate (log x) with the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result.lrs, result.raw_losses, color="0.8", lw=0.8, label="mini-batch loss")
    ax.plot(result.lrs, result.losses, color="C0", lw=2, label="smoothed loss")
    ax.axvline(result.min_loss_lr, color="C3", ls=":", lw=1.2,
               label=f"lowest smoothed loss at {result.min_loss_lr:.3g}")
    ax.axvline(result.suggestion, color="C2", ls="--", lw=2,
               label=f"suggested max lr {result.suggestion:.3g} ({result.rule_name})")
    ax.set_xscale("log")
    finite = [v for v in result.losses if math.isfinite(v)]
    if finite:
        # show the whole descent, not the blow-up at the end
        lo = min(finite + [v for v in result.raw_losses if math.isfinite(v)])
        hi = max(max(finite[: max(1, len(finite) // 10)]), min(finite) * 1.5)
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), hi + 0.3 * (hi - lo + 1e-12))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_OPT_FIELDS = ("momentum", "beta_1", "beta_2", "rho", "epsilon", "weight_decay")


def _device(name: str) -> torch.device:
    from trainwell.train import resolve_device

    return resolve_device(name)   # the same checks as fit: an absent device is a ConfigError


def lr_find_recipe(recipe: Any, *, splits: Any = None, steps: int = 200,
                   start_lr: float = 1e-7, end_lr: float = 10.0, rule: str = "min/10",
                   diverge: float = 4.0, smooth: float = 0.98,
                   progress: bool = False) -> tuple[LRFindResult, Any]:
    """Run :func:`find_lr` on the model, optimizer, batch size and data of a recipe.

    The model is built exactly as ``trainwell fit`` builds it (same seed, same init); the
    optimizer is the recipe's with its hyperparameters; the data are the training split.
    l1/l2 penalties and max-norm are not applied during the test.

    Returns:
        (result, splits) — the splits so that a following fit can reuse them.
    """
    device = _device(recipe.train.device)   # before the data are loaded
    if splits is None:
        splits = load_splits(recipe, progress=progress)
    model = build_model_from_recipe(recipe, splits)
    model.to(device)
    o = recipe.optimizer
    result = find_lr(model, splits.x_train.to(device), splits.y_train.to(device),
                     optimizer=o.name,
                     optimizer_params={k: getattr(o, k) for k in _OPT_FIELDS if hasattr(o, k)},
                     task=resolved_task(recipe, splits),
                     loss=None if recipe.model.loss == "auto" else recipe.model.loss,
                     start_lr=start_lr, end_lr=end_lr, steps=steps,
                     batch_size=recipe.train.batch_size, smooth=smooth, diverge=diverge,
                     rule=rule, seed=recipe.train.seed, clip_global_norm=o.clip_global_norm)
    return result, splits


def record_lr_find(run_dir: str | Path, result: LRFindResult) -> None:
    """Put the finder's plot and numbers into a run directory (shown by its report.html)."""
    from trainwell.report.rundir import add_summary_section

    run_dir = Path(run_dir)
    plot_lr_find(result, run_dir / "plots" / "lr_find.png",
                 title="LR range test (max_lr = \"auto\")")
    result.to_json(run_dir / "lr_find.json")
    add_summary_section(run_dir, "LR finder", table=[
        ["suggested max lr", "rule", "lr at lowest loss", "steepest descent at", "steps"],
        [f"{result.suggestion:.4g}", result.rule_name, f"{result.min_loss_lr:.4g}",
         "—" if result.steepest_lr is None else f"{result.steepest_lr:.4g}", len(result.lrs)]],
        text=result.sentence())


def resolve_auto_max_lr(recipe: Any, splits: Any = None, *, steps: int = 200,
                        rule: str = "min/10") -> tuple[Any, LRFindResult | None]:
    """Replace ``schedule.max_lr = "auto"`` with the LR finder's suggestion.

    Returns ``(recipe, None)`` unchanged when the recipe does not ask for it; otherwise a new
    recipe whose ``schedule.max_lr`` is the suggestion, and the finder's result (whose
    ``sentence()`` is worth printing or putting in the run summary).

    Example:
        >>> recipe, found = resolve_auto_max_lr(recipe, splits)   # doctest: +SKIP
    """
    if not wants_auto_max_lr(recipe):
        return recipe, None
    from trainwell.config import apply_overrides

    result, _ = lr_find_recipe(recipe, splits=splits, steps=steps, rule=rule)
    return apply_overrides(recipe, [f"schedule.max_lr={result.suggestion!r}"]), result
