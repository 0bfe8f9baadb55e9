"""The learning-rate range test ("LR finder") on a recipe, and the automatic ``max_lr`` of 1cycle.

The test itself is a Trainer callback (:class:`trainwell.train.lr_finder.LRFinder`, run by
:func:`find_lr`), so it trains with the recipe's real step: its clipping, penalties and max-norm.

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

import math
from pathlib import Path
from typing import Any

import torch

from trainwell.train.lr_finder import RULES, LRFinder, LRFindResult, find_lr, suggest_lr
from trainwell.workflows.compose import (
    build_model_from_recipe,
    load_splits,
    resolved_task,
    wants_auto_max_lr,
)

__all__ = ["LRFindResult", "LRFinder", "RULES", "find_lr", "lr_find_recipe",
           "resolve_auto_max_lr", "plot_lr_find", "suggest_lr", "wants_auto_max_lr",
           "record_lr_find"]

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
    optimizer is the recipe's with its hyperparameters; the data are the training split; each
    step is the recipe's training step, with its clipping (``clip_value``, ``clip_norm``,
    ``clip_global_norm``), l1/l2 penalties and max-norm. The recipe's schedule is replaced by
    the test's ramp.

    Returns:
        (result, splits) — the splits so that a following fit can reuse them.
    """
    device = _device(recipe.train.device)   # before the data are loaded
    if splits is None:
        splits = load_splits(recipe, progress=progress)
    model = build_model_from_recipe(recipe, splits)
    model.to(device)
    o, r = recipe.optimizer, recipe.regularization
    x, y = splits.x_train, splits.y_train
    if getattr(splits, "streamed", False):  # data on disk: read only what the test can use
        k = min(len(x), steps * recipe.train.batch_size)
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(
            recipe.train.seed))[:k]
        x, y = x[rows], y[rows]
    result = find_lr(model, x.to(device), y.to(device),
                     optimizer=o.name,
                     optimizer_params={k: getattr(o, k) for k in _OPT_FIELDS if hasattr(o, k)},
                     task=resolved_task(recipe, splits),
                     loss=None if recipe.model.loss == "auto" else recipe.model.loss,
                     start_lr=start_lr, end_lr=end_lr, steps=steps,
                     batch_size=recipe.train.batch_size, smooth=smooth, diverge=diverge,
                     rule=rule, seed=recipe.train.seed, clip_value=o.clip_value,
                     clip_norm=o.clip_norm, clip_global_norm=o.clip_global_norm,
                     l1=r.l1, l2=r.l2, max_norm=r.max_norm)
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
