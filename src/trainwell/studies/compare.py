"""Side-by-side experiments: run recipe variants × seeds and compare them at a glance.

A comparison is a grid of *variants* — the product of ``--vary field=v1,v2`` lists applied
to one or more base recipes, or the variants listed in a comparison spec — each trained with
every seed through :func:`trainwell.workflows.run.fit_recipe`. Each (variant, seed) keeps its normal run
directory inside the comparison directory, which adds:

```
<out>/<YYYYmmdd-HHMMSS>-compare-<name>/
  runs/<variant>-seed<k>/...     one normal run directory per variant and seed
  comparison.json, comparison.csv  the table (and every run's numbers)
  plots/learning_curves.png      validation/training accuracy and loss per epoch, overlaid
  plots/val_accuracy_vs_time.png   the same against wall-clock time (speed)
  report.html                    self-contained (images inline), links to each run's report
```

Fair comparisons: variants trained with the same seed get the same validation split, the
same order of mini-batches (the trainer's shuffling generator is seeded by ``train.seed``)
and, when their architectures have the same parameter shapes, the same initial weights (the
model is built right after ``torch.manual_seed(train.seed)``). Variants with different
architectures (other widths or depths) cannot share weights: their draws differ from the
first layer whose shape differs. Adding batch norm or changing the activation keeps the
dense weights identical (batch norm starts at γ=1, β=0), but the init rule may change with the
activation (``init="auto"``: He for ReLU/ELU/Swish, LeCun for SELU), which rescales them.

Example:
    >>> variants = grid_variants([("base", resolve("default"))],
    ...                          parse_vary(["model.batch_norm=none,after"]))  # doctest: +SKIP
    >>> comparison = run_comparison(variants, seeds=[0, 1])                  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainwell.errors import ConfigError
from trainwell.studies.compare_report import (  # noqa: F401 - trainwell.compare keeps every name
    _write_tables,
    comparison_rows,
    plot_comparison,
    print_table,
    table_cells,
    write_comparison_report,
)
from trainwell.studies.compare_spec import (  # noqa: F401
    _VARY_HELP,
    CompareSpec,
    Comparison,
    RunOutcome,
    Variant,
    _safe,
    builtin_specs,
    grid_variants,
    load_spec,
    parse_vary,
    spec_variants,
    split_values,
)
from trainwell.studies.jobs import check_jobs, process_pool
from trainwell.train.rng import parse_seeds

__all__ = ["Variant", "RunOutcome", "Comparison", "CompareSpec", "parse_vary", "parse_seeds",
           "split_values", "grid_variants", "load_spec", "spec_variants", "run_comparison",
           "comparison_rows", "plot_comparison", "write_comparison_report",
           "mc_dropout_accuracy", "builtin_specs", "print_table", "table_cells"]

# --------------------------------------------------------------------------- running
def mc_dropout_accuracy(model: Any, x: Any, y: Any, *, samples: int = 10,
                        batch_size: int = 1024) -> float:
    """Accuracy of the mean softmax over ``samples`` passes with only dropout active.

    ``p(y|x) ≈ (1/N)·Σₙ softmax(f(x; dropout mask n))``; batch norm stays in eval mode.
    ``samples=0`` gives the ordinary (eval mode, deterministic) accuracy of the same model.
    """
    import contextlib

    import torch

    from trainwell.nn import mc_dropout_mode

    device = next(model.parameters()).device
    correct = torch.zeros((), device=device)
    was_training = model.training
    mode = mc_dropout_mode(model) if samples > 0 else contextlib.nullcontext(model.eval())
    with torch.no_grad(), mode:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            if samples > 0:
                probs = torch.stack([torch.softmax(model(xb), dim=-1) for _ in range(samples)])
                pred = probs.mean(0).argmax(-1)
            else:
                pred = model(xb).argmax(-1)
            correct += (pred == y[i:i + batch_size].to(device)).sum()
    model.train(was_training)
    return float(correct.item()) / max(1, len(x))  # host sync: once, at the end


def _metric_of(epochs: list[dict[str, Any]], metric: str) -> tuple[str, float, int]:
    if metric == "auto":
        metric = "val_accuracy" if any("val_accuracy" in e for e in epochs) else "val_loss"
    values = [(e.get(metric), int(e.get("epoch", i + 1))) for i, e in enumerate(epochs)]
    values = [(v, ep) for v, ep in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return metric, math.nan, 0
    pick = max if "acc" in metric else min
    v, ep = pick(values, key=lambda t: t[0])
    return metric, float(v), ep


def _splits_key(recipe: Any) -> str:
    return json.dumps([recipe.data.model_dump(), recipe.train.seed], sort_keys=True, default=str)


def run_comparison(variants: Sequence[Variant], *, seeds: Sequence[int] = (0,),
                   out: str | Path = "runs", name: str = "compare", quiet: bool = False,
                   metric: str = "auto", description: str = "",
                   callbacks: Callable[[Variant, int], Sequence[Any]] | None = None,
                   splits: Any = None, console: Any = None, jobs: int = 1) -> Comparison:
    """Train every variant with every seed and write the comparison directory.

    Args:
        variants: from :func:`grid_variants` or :func:`load_spec`.
        seeds: seeds; variants with the same seed share data split, batch order and (where
            the architecture allows) initial weights (default ``(0,)``).
        out: parent folder of the comparison directory (default ``runs``).
        name: names the comparison directory.
        quiet: no per-run progress output.
        metric: ``auto`` = best ``val_accuracy`` for classification, lowest ``val_loss``
            otherwise; or any history key.
        callbacks: ``f(variant, seed) -> callbacks`` added to that run's trainer.
        splits: data to use for every run instead of loading each recipe's ``[data]``.
        jobs: runs trained at the same time, each in its own process (default 1: one after
            the other in this process). Each run's numbers are the same either way; with
            ``jobs > 1`` every process loads the data itself and ``callbacks`` is refused.

    Returns:
        The :class:`Comparison` (directory, aggregated rows, every run's outcome).
    """
    from trainwell.report.rundir import new_run_dir

    seeds = parse_seeds(list(seeds))
    if not variants:
        raise ConfigError("compare", [], "at least one variant")
    jobs = check_jobs(jobs)
    if jobs > 1 and callbacks is not None:
        raise ConfigError("--jobs", jobs, "1 when callbacks are given (they stay in this "
                          "process)")
    folder = new_run_dir(out, f"compare-{_safe(name)}")
    runs = folder / "runs"
    trials = list(itertools.product(seeds, variants))
    total = len(trials)
    if jobs > 1:
        outcomes = _run_parallel(trials, runs, metric, jobs, splits, console, quiet)
    else:
        cache: dict[str, Any] = {}
        outcomes = []
        for k, (seed, variant) in enumerate(trials, start=1):
            if console is not None and not quiet:
                console.print(f"[bold]({k}/{total}) {variant.name}[/bold] seed {seed}")
            extra = list(callbacks(variant, seed)) if callbacks else []
            outcomes.append(run_trial(variant, seed, runs, metric=metric, quiet=quiet,
                                      splits=splits, callbacks=extra, cache=cache))
    used = outcomes[0].metric if outcomes else metric
    rows = comparison_rows(variants, outcomes)
    comparison = Comparison(dir=folder, rows=rows, outcomes=outcomes, metric=used)
    _write_tables(comparison, variants, seeds, name, description)
    plot_comparison(outcomes, folder / "plots")
    write_comparison_report(comparison, title=f"Comparison: {name}", description=description)
    return comparison


_WORKER_CACHE: dict[str, Any] = {}  # one data load per (data, seed) in each job process


def run_trial(variant: Variant, seed: int, runs: Path, *, metric: str = "auto",
              quiet: bool = True, splits: Any = None, callbacks: Sequence[Any] = (),
              cache: dict[str, Any] | None = None) -> RunOutcome:
    """Train one (variant, seed) into ``runs/<variant>-seed<k>`` and measure it."""
    from trainwell.config import apply_overrides
    from trainwell.workflows.lrfind import resolve_auto_max_lr, wants_auto_max_lr
    from trainwell.workflows.run import fit_recipe

    cache = _WORKER_CACHE if cache is None else cache
    run_name = _safe(f"{variant.name}-seed{seed}")
    recipe = apply_overrides(variant.recipe, [f"train.seed={seed}", f"name={run_name}"])
    data = splits
    if data is None:
        key = _splits_key(recipe)
        if key not in cache:
            from trainwell.workflows.compose import load_splits

            cache[key] = load_splits(recipe, progress=not quiet)
        data = cache[key]
    max_lr = None
    if wants_auto_max_lr(recipe):
        recipe, found = resolve_auto_max_lr(recipe, data)
        max_lr = found.suggestion if found else None
    t0 = time.perf_counter()
    result = fit_recipe(recipe, out=runs, quiet=quiet, splits=data, run_name=run_name,
                        callbacks=list(callbacks))
    total_time = time.perf_counter() - t0
    epochs = [dict(e) for e in result.history.epochs]
    used_metric, best, best_epoch = _metric_of(epochs, metric)
    times = [e["time"] for e in epochs if isinstance(e.get("time"), (int, float))]
    mc = kept = None
    if variant.mc_samples > 0 and len(getattr(data, "x_val", ())) > 0:
        # MC dropout scores the weights fit kept (the best epoch under early stopping);
        # the plain accuracy of those same weights is the fair reference
        mc = mc_dropout_accuracy(result.model, data.x_val, data.y_val,
                                 samples=variant.mc_samples)
        kept = mc_dropout_accuracy(result.model, data.x_val, data.y_val, samples=0)
    status = str((result.summary or {}).get("status", "completed"))
    return RunOutcome(
        variant=variant.name, seed=seed, run_dir=str(result.run_dir), status=status,
        epochs=epochs, metric=used_metric, best=best, best_epoch=best_epoch,
        time_per_epoch=statistics.fmean(times) if times else math.nan,
        # the epochs' own times: the first run's one-off warm-up (imports, first kernels,
        # report writing) would otherwise make it look slower than the others
        total_time=math.fsum(times) if times else total_time, mc_accuracy=mc,
        kept_accuracy=kept, max_lr=max_lr)


def _run_parallel(trials: list[tuple[int, Variant]], runs: Path, metric: str, jobs: int,
                  splits: Any, console: Any, quiet: bool) -> list[RunOutcome]:
    """The trials on ``jobs`` processes (spawned: a clean torch in each), in the trials'
    order."""
    from concurrent.futures import as_completed

    outcomes: list[RunOutcome | None] = [None] * len(trials)
    with process_pool(min(jobs, len(trials)), jobs) as pool:
        futures = {pool.submit(run_trial, variant, seed, runs, metric=metric, quiet=True,
                               splits=splits): k for k, (seed, variant) in enumerate(trials)}
        for done, future in enumerate(as_completed(futures), start=1):
            k = futures[future]
            outcomes[k] = future.result()
            if console is not None and not quiet:
                seed, variant = trials[k]
                console.print(f"[bold]({done}/{len(trials)}) {variant.name}[/bold] seed {seed}"
                              f" done", markup=True)
    return [o for o in outcomes if o is not None]
