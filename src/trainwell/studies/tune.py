"""Hyperparameter search over recipe fields with Optuna (TPE, median pruning, SQLite studies).

A *search space* maps recipe fields to distributions (TOML)::

    "optimizer.lr" = {low = 1e-4, high = 1e-1, log = true}      # float, log-uniform
    "train.batch_size" = {low = 32, high = 256, step = 32}      # int (both bounds integers)
    "model.activation" = ["relu", "elu", "selu"]                # categorical
    "regularization.dropout" = {low = 0.0, high = 0.5}
    "model.hidden" = {layers = [1, 4], units = [50, 300]}       # depth and width together

``model.hidden`` with ``layers``/``units`` samples the number of hidden layers and the width
(one width for all layers by default, as the chapter recommends; ``same_units = false``
samples one width per layer; ``log = true`` samples widths log-uniformly). Every field path
and every bound is checked against the recipe schema before the first trial.

Each trial is a normal run (``fit_recipe``) whose per-epoch validation metric is reported to
Optuna; a :class:`~optuna.pruners.MedianPruner` stops trials that fall below the median of
earlier trials at the same epoch. The study lives in a SQLite file (default
``<out>/tune-<study>/study.db``) loaded if it exists, so a search can be stopped and resumed
and several processes can work on the same study at once (give each its own ``--seed``).

Optuna is an optional dependency: ``pip install "trainwell[tune]"``.

Example:
    >>> result = run_study(resolve("default"), "fashion_mlp", n_trials=20)   # doctest: +SKIP
    >>> result.best_recipe_path                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainwell.checks import is_integer, is_number
from trainwell.errors import ConfigError, TrainwellError
from trainwell.studies.jobs import check_jobs
from trainwell.studies.tune_space import (  # noqa: F401 - trainwell.tune keeps every name
    ParamSpec,
    builtin_spaces,
    load_space,
    parse_space,
    require_optuna,
    suggest_overrides,
)
from trainwell.studies.tune_trials import fail_stale_trials, record_owner

__all__ = ["ParamSpec", "TuneResult", "PruningCallback", "require_optuna", "parse_space",
           "load_space", "builtin_spaces", "suggest_overrides", "run_study", "best_trials_rows",
           "print_best_trials",
           "plot_study"]


def _callback_base() -> type:
    from trainwell.train import Callback

    return Callback


class PruningCallback(_callback_base()):  # type: ignore[misc]
    """Reports the validation metric to an Optuna trial each epoch; stops a pruned trial.

    The trial is stopped gracefully (``t.stop_training``) so that its run directory is
    complete; the objective then raises ``optuna.TrialPruned``.
    """

    order = 5

    def __init__(self, trial: Any, monitor: str):
        self.trial = trial
        self.monitor = monitor
        self.pruned = False
        self.values: list[float] = []

    def on_epoch_end(self, t: Any, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if not is_number(value):
            return
        self.values.append(float(value))
        self.trial.report(float(value), step=int(epoch))
        if self.trial.should_prune():
            self.pruned = True
            t.stop_training = True


@dataclass
class TuneResult:
    """What :func:`run_study` leaves behind."""

    study: Any
    out_dir: Path
    storage: str
    metric: str
    direction: str
    best_recipe_path: Path | None
    rows: list[dict[str, Any]]
    plots: list[Path]
    notes: list[str]
    interrupted: bool = False  # Ctrl-C/SIGTERM: the finished trials were kept


def _needs_own_data(specs: Sequence[ParamSpec]) -> bool:
    return any(s.path.startswith("data.") or s.path == "train.seed" for s in specs)


def _study_dir(out: str | Path, study_name: str) -> Path:
    return Path(out) / f"tune-{study_name}"


def run_study(recipe: Any, space: str | Path | dict | Sequence[ParamSpec], *, n_trials: int,
              study_name: str | None = None, storage: str | None = None,
              timeout: float | None = None, out: str | Path = "runs", seed: int = 0,
              metric: str = "auto", prune: bool = True, quiet: bool = True,
              splits: Any = None, console: Any = None, jobs: int = 1) -> TuneResult:
    """Search ``space`` for the recipe fields that give the best validation metric.

    Args:
        recipe: the base recipe; every trial is this recipe with the sampled fields set.
        space: a space file/name, a dict (as from TOML) or parsed :class:`ParamSpec` list.
        n_trials: trials to run in this call (added to those already in the study).
        study_name: default ``recipe.name``.
        storage: an Optuna storage URL; default ``sqlite:///<out>/tune-<study>/study.db``.
        timeout: stop starting new trials after this many seconds (default None).
        out: parent folder of ``tune-<study>/`` (trial runs, best recipe, plots).
        seed: TPE seed; a resumed study uses ``seed + trials already done`` so that it does not
            repeat earlier draws; give parallel processes different seeds.
        metric: ``auto`` = ``val_accuracy`` (maximized) for classification, ``val_loss``
            (minimized) otherwise; or any history key (``acc`` in the name → maximized).
        prune: stop unpromising trials with the median rule (default True).
        quiet: no per-trial training output (default True).
        splits: data for every trial (default: loaded once from the recipe, unless the space
            varies ``data.*`` or ``train.seed``).
        console: a ``rich`` console that gets one line per finished trial (default None).
        jobs: trials trained at the same time (default 1). ``jobs - 1`` more processes join
            the study through its storage, each with its own sampler seed (Optuna's way of
            parallel search); this process shows its own trials' lines.

    Returns:
        :class:`TuneResult`; ``best_recipe.toml`` in the study folder is ready for
        ``trainwell fit``.
    """
    optuna = require_optuna()
    from trainwell.config import apply_overrides, loads_recipe, recipe_diff, save_recipe

    if not (is_integer(n_trials) and n_trials >= 1):
        raise ConfigError("--trials", n_trials, "an integer ≥ 1")
    jobs = check_jobs(jobs)
    if timeout is not None and not (is_number(timeout) and timeout > 0):
        raise ConfigError("--timeout", timeout, "a number of seconds > 0")
    if isinstance(space, (str, Path)):
        specs = load_space(space, recipe)
    elif isinstance(space, dict):
        specs = parse_space(space, recipe)
    else:
        specs = list(space)
    study_name = study_name or recipe.name
    folder = _study_dir(out, study_name)
    folder.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(folder / 'study.db').resolve()}"

    shared = splits
    if shared is None and not _needs_own_data(specs):
        from trainwell.workflows.compose import load_splits

        shared = load_splits(recipe, progress=not quiet)
    from trainwell.tasks import get_task
    from trainwell.workflows.compose import resolved_task

    task = resolved_task(recipe, shared) if shared is not None else recipe.model.task
    if metric == "auto":
        metric = "val_loss" if task == "regression" else "val_accuracy"
    if task in ("multiclass", "binary", "multilabel", "regression"):
        # a misspelt metric would make every trial fail without a value: refuse it now
        names = ["loss", *get_task(task).metrics]
        accepted = [f"val_{n}" for n in names] + names
        if metric not in accepted:
            raise ConfigError("--metric", metric, ["auto", *accepted])
    direction = "maximize" if "acc" in metric else "minimize"

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1) if prune \
        else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=study_name, storage=storage, direction=direction,
                                pruner=pruner, load_if_exists=True)
    _check_same_study(study, recipe, metric, direction, specs, loads_recipe, recipe_diff)
    notes: list[str] = [f"trial {n} was left running by a process that is gone: marked failed"
                        for n in fail_stale_trials(study)]
    done = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + done)
    objective = _objective(recipe, specs, metric, direction, folder, quiet, shared)
    shares = [n_trials // jobs + (1 if i < n_trials % jobs else 0) for i in range(jobs)]
    pool = futures = None
    if jobs > 1:  # the other processes join the same study through its storage
        from trainwell.studies.jobs import process_pool

        pool = process_pool(jobs - 1, jobs)
        futures = [pool.submit(_optimize_in_worker, recipe, specs, metric, direction, folder,
                               splits, study_name, storage, seed + done + 7919 * k, share,
                               timeout, prune)
                   for k, share in enumerate(shares[1:], start=1) if share]
    interrupted = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=shares[0], timeout=timeout,
                           catch=(TrainwellError,),
                           callbacks=[_progress(console, metric)] if console is not None
                           else None)
        interrupted = objective.interrupted
        for f in futures or ():
            f.result()  # a worker's failure is this call's failure
    except KeyboardInterrupt:  # between trials (a trial's own stop is handled in it)
        interrupted = True
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    best_path = None
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        best_recipe = apply_overrides(recipe, list(best.user_attrs.get("overrides", [])))
        best_recipe = apply_overrides(best_recipe, [
            f"name={recipe.name}-tuned",
            f"description={json.dumps(f'best of study {study_name}: {metric} = {best.value:.4g} (trial {best.number})')}"])
        best_path = save_recipe(best_recipe, folder / "best_recipe.toml")
        (folder / "best_params.json").write_text(json.dumps(
            dict(trial=best.number, value=best.value, metric=metric, params=best.params,
                 overrides=best.user_attrs.get("overrides", []),
                 run_dir=best.user_attrs.get("run_dir")), indent=2), encoding="utf-8")
    else:
        notes.append("no trial completed: no best recipe yet")
    rows = best_trials_rows(study, metric)
    plots, plot_notes = plot_study(study, folder / "plots")
    notes += plot_notes
    (folder / "tune_summary.json").write_text(json.dumps(
        dict(study=study_name, storage=storage, metric=metric, direction=direction,
             trials=rows, notes=notes, best_recipe=str(best_path) if best_path else None),
        indent=2, default=str), encoding="utf-8")
    return TuneResult(study=study, out_dir=folder, storage=storage, metric=metric,
                      direction=direction, best_recipe_path=best_path, rows=rows, plots=plots,
                      notes=notes, interrupted=interrupted)


def _objective(recipe: Any, specs: Sequence[ParamSpec], metric: str, direction: str,
               folder: Path, quiet: bool, shared: Any) -> Callable[[Any], float]:
    """One trial: the recipe with the sampled fields, trained; its best ``metric``."""
    optuna = require_optuna()
    from trainwell.config import apply_overrides
    from trainwell.workflows.run import fit_recipe

    def objective(trial: Any) -> float:
        try:
            overrides = suggest_overrides(trial, specs, recipe)
            trial.set_user_attr("overrides", overrides)
            r = apply_overrides(recipe, overrides + [f"name={recipe.name}-trial{trial.number}"])
        except ConfigError as exc:  # a combination the recipe refuses: a failed trial
            trial.set_user_attr("error", str(exc))
            return math.nan
        cb = PruningCallback(trial, metric)
        record_owner(trial)
        result = fit_recipe(r, out=folder / "trials", quiet=quiet, splits=shared,
                            run_name=f"trial{trial.number:03d}", callbacks=[cb],
                            interrupt="return")
        trial.set_user_attr("run_dir", str(result.run_dir))
        trial.set_user_attr("status", str(result.summary.get("status", "")))
        if result.summary.get("status") == "interrupted":  # Ctrl-C/SIGTERM: end the search
            objective.interrupted = True
            trial.study.stop()
            trial.set_user_attr("error", "interrupted")
            return math.nan
        if cb.pruned:
            raise optuna.TrialPruned()
        if not cb.values:
            trial.set_user_attr("error", f"no finite {metric} (status "
                                f"{result.summary.get('status')})")
            return math.nan
        return max(cb.values) if direction == "maximize" else min(cb.values)

    objective.interrupted = False
    return objective


def _optimize_in_worker(recipe: Any, specs: Sequence[ParamSpec], metric: str, direction: str,
                        folder: Path, splits: Any, study_name: str, storage: str, seed: int,
                        n_trials: int, timeout: float | None, prune: bool) -> None:
    """``--jobs``: one more process running trials of the same study (its own sampler seed)."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shared = splits
    if shared is None and not _needs_own_data(specs):
        from trainwell.workflows.compose import load_splits

        shared = load_splits(recipe, progress=False)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1) if prune \
        else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner,
                              sampler=optuna.samplers.TPESampler(seed=seed))
    objective = _objective(recipe, specs, metric, direction, folder, True, shared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrainwellError,))


def _progress(console: Any, metric: str) -> Any:
    """An Optuna callback printing one line per finished trial."""

    def show(study: Any, trial: Any) -> None:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in trial.params.items())
        value = f"{metric} {trial.value:.4f}" if trial.value is not None else ""
        if trial.user_attrs.get("error"):
            value = f"failed: {trial.user_attrs['error']}"
        console.print(f"trial {trial.number} {trial.state.name.lower()}"
                      + (f" at epoch {trial.last_step}" if trial.state.name == "PRUNED" else "")
                      + f" {value} — {params}")

    return show


def _check_same_study(study: Any, recipe: Any, metric: str, direction: str,
                      specs: Sequence[ParamSpec], loads_recipe: Any, recipe_diff: Any) -> None:
    attrs = study.user_attrs
    if "base_recipe" not in attrs:
        study.set_user_attr("base_recipe", recipe.to_toml())
        study.set_user_attr("metric", metric)
        study.set_user_attr("space", [s.path for s in specs])
        return
    if attrs.get("metric") != metric or study.direction.name.lower() != direction:
        raise ConfigError("--metric", metric, f"{attrs.get('metric')} (the metric study "
                          f"{study.study_name} was started with), or a new --study-name")
    diff = recipe_diff(loads_recipe(attrs["base_recipe"]), recipe, ignore=("description",))
    if diff:
        raise ConfigError("RECIPE", recipe.name, f"the recipe study {study.study_name} was "
                          f"started with (these fields differ: {', '.join(diff)}), or a new "
                          "--study-name")


def best_trials_rows(study: Any, metric: str, top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` best complete trials (best first), then the count of pruned/failed ones."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    complete.sort(key=lambda t: t.value, reverse=reverse)
    rows = []
    for t in complete[:top]:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else math.nan
        rows.append(dict(trial=t.number, value=t.value, metric=metric, params=dict(t.params),
                         epochs=len(t.intermediate_values), seconds=duration,
                         run_dir=t.user_attrs.get("run_dir")))
    return rows


def print_best_trials(result: TuneResult, console: Any = None) -> None:
    """The best trials as a rich table, and the study's trial counts."""
    import optuna
    from rich import box
    from rich.table import Table

    from trainwell.console import make_console

    console = console or make_console()
    states = [t.state for t in result.study.trials]
    count = {s.name.lower(): states.count(s) for s in optuna.trial.TrialState if states.count(s)}
    params = list(dict.fromkeys(k for r in result.rows for k in r["params"]))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  title=f"best trials of {result.study.study_name} "
                        f"({', '.join(f'{v} {k}' for k, v in count.items())})")
    # a field's section on its own header line, and folding instead of "…", keep every
    # header readable when the space has many parameters and the terminal is narrow
    table.add_column("trial", justify="right")
    table.add_column(result.metric, justify="right", overflow="fold")
    for p in params:
        table.add_column(p.replace(".", "\n", 1), justify="right", overflow="fold")
    table.add_column("epochs", justify="right")
    table.add_column("time", justify="right", no_wrap=True)
    for i, r in enumerate(result.rows):
        cells = [str(r["trial"]), f"{r['value']:.4f}"]
        for p in params:
            v = r["params"].get(p, "")
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        cells += [str(r["epochs"]), f"{r['seconds']:.1f} s"]
        table.add_row(*cells, style="bold" if i == 0 else None)
    console.print(table)


def _save_axes(plt: Any, ax: Any, path: Path) -> Path:
    """Save one of Optuna's matplotlib plots at the report's size and free it."""
    ax.figure.set_size_inches(8, 4.5)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=100)
    plt.close(ax.figure)
    return path


def plot_study(study: Any, folder: str | Path) -> tuple[list[Path], list[str]]:
    """Search history and parameter importances as PNGs (Optuna's matplotlib plots).

    Importances need at least two complete trials; with fewer, a note says so instead.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    notes: list[str] = []
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # Optuna's plots switch matplotlib to its ggplot style; rc_context puts the process's
    # style back, so figures drawn later (a study's, a report's) keep trainwell's look.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore")
        if complete:
            paths.append(_save_axes(plt, ovm.plot_optimization_history(study),
                                    folder / "search_history.png"))
        else:
            notes.append("no complete trial: no search-history plot")
        varied = {k for t in complete for k in t.params}
        if len(complete) >= 2 and varied:
            try:
                paths.append(_save_axes(plt, ovm.plot_param_importances(study),
                                        folder / "param_importances.png"))
            except (RuntimeError, ValueError, ZeroDivisionError) as exc:
                notes.append(f"parameter importances unavailable: {exc}")
        else:
            notes.append(f"parameter importances need at least 2 complete trials "
                         f"(have {len(complete)})")
    return paths, notes
