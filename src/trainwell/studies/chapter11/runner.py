"""Run the chapter-11 study: every group's variants over the same seeds, one record each."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainwell.studies.chapter11.groups import Group, Variant, select_groups
from trainwell.train.rng import parse_seeds

__all__ = ["VariantResult", "GroupResult", "run_chapter11", "mean_std"]

METRICS = ("final_val_accuracy", "best_val_accuracy", "test_accuracy")


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None for fewer than two values) of the known values."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return None, None
    return statistics.fmean(known), (statistics.stdev(known) if len(known) > 1 else None)


@dataclass
class VariantResult:
    """A variant's per-seed values (fractions) and learning curves."""

    group: str
    variant: str
    recipe: str
    metric: str
    book: float | None
    note: str = ""
    seeds: list[int] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(
        default_factory=lambda: {m: [] for m in METRICS})
    epochs: int | None = None
    times: list[float] = field(default_factory=list)
    histories: list[list[dict[str, Any]]] = field(default_factory=list)

    def add(self, seed: int, *, final_val: float | None, best_val: float | None,
            test: float | None, seconds: float | None = None,
            history: list[dict[str, Any]] | None = None) -> None:
        self.seeds.append(seed)
        for key, value in zip(METRICS, (final_val, best_val, test), strict=True):
            self.values[key].append(None if value is None else float(value))
        if seconds is not None:
            self.times.append(float(seconds))
        if history:
            self.histories.append(history)
            self.epochs = len(history)

    def stats(self, metric: str | None = None) -> tuple[float | None, float | None]:
        return mean_std(self.values[metric or self.metric])

    def record(self) -> dict[str, Any]:
        """The ``--json`` record: per-seed values and their mean and std for each metric."""
        out: dict[str, Any] = {"group": self.group, "variant": self.variant,
                               "recipe": self.recipe or None, "metric": self.metric,
                               "book": self.book, "seeds": list(self.seeds)}
        for key in METRICS:
            vals = self.values[key]
            if all(v is None for v in vals):
                continue
            mean, std = mean_std(vals)
            out[key] = {"mean": mean, "std": std, "per_seed": vals}
        out["epochs"] = self.epochs
        out["seconds_per_seed"] = statistics.fmean(self.times) if self.times else None
        return out


@dataclass
class GroupResult:
    group: Group
    variants: list[VariantResult]
    seconds: float = 0.0


def _history_rows(history: Any) -> list[dict[str, Any]]:
    return history.to_list() if hasattr(history, "to_list") else list(history or [])


def _val(rows: list[dict[str, Any]], how: Callable[[list[float]], float]) -> float | None:
    vals = [r["val_accuracy"] for r in rows if isinstance(r.get("val_accuracy"), (int, float))]
    return how(vals) if vals else None


class _SplitsCache:
    """Each dataset configuration is loaded once for the whole study."""

    def __init__(self, quick: bool, progress: bool):
        self.quick, self.progress, self._cache = quick, progress, {}

    def __call__(self, recipe: Any) -> Any:
        if self.quick:
            key: Any = "synthetic"
        else:
            d = recipe.data
            key = (d.dataset, d.path, d.validation, d.standardize, d.flatten,
                   tuple(d.classes or ()), d.train_limit, d.stratify)
        if key not in self._cache:
            if self.quick:
                from trainwell.studies.experiments.transfer_study import synthetic_fashion

                self._cache[key] = synthetic_fashion()
            else:
                from trainwell.workflows.compose import load_splits

                self._cache[key] = load_splits(recipe, progress=self.progress)
        return self._cache[key]


def _variant_recipe(v: Variant, group: Group, seed: int, quick: bool, device: str | None,
                    overrides_: Sequence[str] = ()) -> Any:
    from trainwell.config import apply_overrides, resolve

    overrides = [f"train.seed={seed}"]
    if quick:
        overrides += list(group.quick)
    overrides += list(overrides_)
    if device:
        overrides.append(f"train.device={device}")
    return apply_overrides(resolve(v.recipe), overrides)


def _train(recipe: Any, splits: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    from trainwell.train import EarlyStopping
    from trainwell.workflows.compose import build_from_recipe

    t = recipe.train
    callbacks = []
    if t.early_stopping:
        callbacks.append(EarlyStopping(monitor=t.monitor, patience=t.patience,
                                       min_delta=t.min_delta, restore_best=t.restore_best))
    splits, model, trainer = build_from_recipe(recipe, splits, callbacks=callbacks,
                                               progress=False)
    trainer.fit(splits.x_train, splits.y_train, epochs=t.epochs, batch_size=t.batch_size,
                validation_data=(splits.x_val, splits.y_val), shuffle=t.shuffle)
    return splits, (model, trainer), _history_rows(trainer.history)


def _accuracy(trainer: Any, x: Any, y: Any) -> float | None:
    if x is None or len(x) == 0:
        return None
    return trainer.evaluate(x, y).get("accuracy")


def _run_recipes(group: Group, seeds: list[int], load: _SplitsCache, quick: bool,
                 device: str | None, say: Callable[[str], None],
                 overrides: Sequence[str] = ()) -> list[VariantResult]:
    from trainwell.studies.compare import mc_dropout_accuracy

    results = {v.name: VariantResult(group.name, v.name, v.recipe, v.metric, v.book, v.note)
               for v in group.variants}
    for seed in seeds:
        trained: dict[str, tuple[Any, Any]] = {}
        for v in group.variants:
            if v.mc_samples:
                continue
            recipe = _variant_recipe(v, group, seed, quick, device, overrides)
            t0 = time.perf_counter()
            splits, (model, trainer), rows = _train(recipe, load(recipe))
            val = _accuracy(trainer, splits.x_val, splits.y_val)
            test = _accuracy(trainer, splits.x_test, splits.y_test)
            seconds = time.perf_counter() - t0
            results[v.name].add(seed, final_val=val, best_val=_val(rows, max), test=test,
                                seconds=seconds, history=rows)
            trained[v.name] = (splits, model)
            say(f"  {group.name}/{v.name} seed {seed}: validation accuracy "
                f"{_pct(val)}, test {_pct(test)} ({seconds:.0f} s)")
        for v in group.variants:
            if not v.mc_samples or v.derived_from not in trained:
                continue
            splits, model = trained[v.derived_from]
            t0 = time.perf_counter()
            val = mc_dropout_accuracy(model, splits.x_val, splits.y_val, samples=v.mc_samples)
            test = mc_dropout_accuracy(model, splits.x_test, splits.y_test, samples=v.mc_samples)
            results[v.name].add(seed, final_val=val, best_val=None, test=test,
                                seconds=time.perf_counter() - t0)
            results[v.name].epochs = results[v.derived_from].epochs
            say(f"  {group.name}/{v.name} seed {seed}: MC dropout ({v.mc_samples} passes) "
                f"validation {_pct(val)}, test {_pct(test)}")
    return list(results.values())


def _run_transfer(group: Group, seeds: list[int], quick: bool, device: str | None,
                  data_dir: Any, say: Callable[[str], None]) -> list[VariantResult]:
    from trainwell.studies.experiments.transfer_study import (
        TransferStudyConfig,
        _factor_key,
        run_transfer_study,
    )

    # The transfer defaults trainwell recommends: phase 2 keeps the rate (factor 1); the 3rd
    # edition's 1e-4 (factor 0.1) is the extra arm.
    base = TransferStudyConfig.quick() if quick else TransferStudyConfig()
    config = TransferStudyConfig(**{**base.__dict__, "lr_factor": 1.0,
                                    "compare_lr_factors": (0.1,),
                                    **({"device": device} if device else {})})
    t0 = time.perf_counter()
    res = run_transfer_study(seeds, config=config, data_dir=data_dir, out=None, quick=quick,
                             quiet=True)
    seconds = (time.perf_counter() - t0) / max(1, len(seeds))
    keys = {"a": "a", "b_scratch": "b_scratch", "b_on_a": "b_on_a",
            "b_on_a_lr1e-4": _factor_key(0.1)}
    out = []
    for v in group.variants:
        r = VariantResult(group.name, v.name, v.recipe, v.metric, v.book, v.note)
        for row in res.rows:
            hist = res.histories[str(row["seed"])][keys[v.name]]
            r.add(row["seed"], final_val=_val(hist, lambda x: x[-1]), best_val=_val(hist, max),
                  test=row[keys[v.name]], history=hist)
        r.times = [seconds] if v.name == "a" else []
        out.append(r)
        say(f"  transfer/{v.name}: test accuracy {_pct(r.stats('test_accuracy')[0])} (mean)")
    return out


def _run_pretraining(group: Group, seeds: list[int], quick: bool, device: str | None,
                     data_dir: Any, say: Callable[[str], None]) -> list[VariantResult]:
    from dataclasses import replace

    from trainwell.studies.experiments.pretrain_study import (
        PretrainStudyConfig,
        run_pretrain_study,
    )

    config = PretrainStudyConfig.quick() if quick else PretrainStudyConfig()
    if device:
        config = replace(config, device=device)
    t0 = time.perf_counter()
    res = run_pretrain_study(seeds, config=config, data_dir=data_dir, out=None, quick=quick,
                             quiet=True)
    seconds = (time.perf_counter() - t0) / max(1, len(seeds))
    out = []
    for v in group.variants:
        r = VariantResult(group.name, v.name, v.recipe, v.metric, v.book, v.note)
        for row in res.rows:
            hist = res.histories[str(row["seed"])][v.name]
            r.add(row["seed"], final_val=_val(hist, lambda x: x[-1]), best_val=_val(hist, max),
                  test=row[v.name], history=hist)
        r.times = [seconds]
        out.append(r)
        say(f"  pretraining/{v.name}: test accuracy {_pct(r.stats('test_accuracy')[0])} (mean)")
    return out


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def run_chapter11(seeds: Sequence[int] | str = (42, 43, 44), *, only: str | list[str] | None = None,
                  quick: bool = False, device: str | None = None,
                  data_dir: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                  say: Callable[[str], None] | None = None) -> list[GroupResult]:
    """Train every variant of the selected groups for every seed.

    Args:
        seeds: random seeds (initial weights, data order, dropout); every variant of a group
            uses the same ones. Default 42, 43, 44.
        only: group names (comma-separated or a list); default all.
        quick: synthetic data and small networks: the whole study in seconds.
        device: ``train.device`` for every run (default: each recipe's).
        data_dir: folder holding ``fashion-mnist/`` for the transfer and pretraining groups
            (default ``$TRAINWELL_DATA``).
        overrides: ``section.field=value`` applied to every recipe-based variant (e.g.
            ``train.epochs=2`` for a shorter run); the transfer and pretraining groups keep
            their setup.
        say: called with one progress line per run (default: silent).

    Returns:
        one :class:`GroupResult` per group, in the study's order.

    Example:
        >>> [g.group.name for g in run_chapter11([0], only="batch_norm", quick=True)]
        ['batch_norm']
    """
    seeds = parse_seeds(seeds)
    groups = select_groups(only)
    if overrides:   # a bad --set stops before anything trains
        from trainwell.config import apply_overrides, resolve

        for g in groups:
            for v in g.variants:
                if v.recipe and g.kind == "recipes":
                    apply_overrides(resolve(v.recipe), overrides)
    say = say or (lambda _text: None)
    if data_dir is not None:
        os.environ["TRAINWELL_DATA"] = str(data_dir)
    load = _SplitsCache(quick, progress=False)
    results = []
    for group in groups:
        say(f"[bold]{group.name}[/bold]: {group.title}")
        t0 = time.perf_counter()
        if group.kind == "transfer":
            variants = _run_transfer(group, seeds, quick, device, data_dir, say)
        elif group.kind == "pretraining":
            variants = _run_pretraining(group, seeds, quick, device, data_dir, say)
        else:
            variants = _run_recipes(group, seeds, load, quick, device, say, overrides)
        results.append(GroupResult(group, variants, time.perf_counter() - t0))
    return results
