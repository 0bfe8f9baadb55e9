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

import base64
import csv
import html
import itertools
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainwell.errors import ConfigError
from trainwell.train.rng import parse_seeds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Variant", "RunOutcome", "Comparison", "CompareSpec", "parse_vary", "parse_seeds",
           "split_values", "grid_variants", "load_spec", "spec_variants", "run_comparison",
           "comparison_rows", "plot_comparison", "write_comparison_report",
           "mc_dropout_accuracy", "builtin_specs", "print_table", "table_cells"]

_VARY_HELP = "field=value1,value2,… e.g. model.batch_norm=none,after"


@dataclass
class Variant:
    """One configuration of a comparison.

    Attributes:
        name: short label used in the table, the plots and the run folder names.
        recipe: the validated recipe (its seed is replaced by each comparison seed).
        changes: the fields that make this variant, ``{field: value text}``.
        mc_samples: when > 0, also report the MC-dropout validation accuracy with this many
            stochastic passes (the trained model, no retraining).
    """

    name: str
    recipe: Any
    changes: dict[str, str] = field(default_factory=dict)
    mc_samples: int = 0


@dataclass
class RunOutcome:
    """The numbers of one (variant, seed) run."""

    variant: str
    seed: int
    run_dir: str
    status: str
    epochs: list[dict[str, Any]]
    metric: str
    best: float
    best_epoch: int
    time_per_epoch: float
    total_time: float
    mc_accuracy: float | None = None
    kept_accuracy: float | None = None
    max_lr: float | None = None


@dataclass
class Comparison:
    """What :func:`run_comparison` produced."""

    dir: Path
    rows: list[dict[str, Any]]
    outcomes: list[RunOutcome]
    metric: str

    @property
    def report(self) -> Path:
        return self.dir / "report.html"


# --------------------------------------------------------------------------- parsing
def split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2],"x,y"`` on the commas outside brackets and quotes."""
    out, cur, depth, quote = [], [], 0, ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["model.activation=relu,elu"]`` → ``[("model.activation", ["relu", "elu"])]``.

    Raises:
        ConfigError: for text without ``=``, an empty value, or a field given twice.
    """
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        values = split_values(text) if sep else []
        if not key or not values or any(v == "" for v in values):
            raise ConfigError("--vary", item, _VARY_HELP)
        if any(key == k for k, _ in out):
            raise ConfigError("--vary", item, "each field once (list all its values in one "
                              "--vary)")
        out.append((key, values))
    return out


def _short(field_path: str) -> str:
    return field_path.rsplit(".", 1)[-1]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "variant"


def grid_variants(bases: Sequence[tuple[str, Any]], vary: Sequence[tuple[str, list[str]]],
                  *, overrides: Sequence[str] = ()) -> list[Variant]:
    """Every base recipe × the product of the ``vary`` values, validated before any training.

    Args:
        bases: ``(label, recipe)`` pairs (one per recipe file).
        vary: as returned by :func:`parse_vary`.
        overrides: ``--set`` overrides applied to every variant first.

    Raises:
        ConfigError: an unknown field (listing the valid ones) or a value a field refuses.
    """
    from trainwell.config import apply_overrides

    variants: list[Variant] = []
    for label, base in bases:
        base = apply_overrides(base, list(overrides)) if overrides else base
        # each value alone first, so that the error names the one bad value
        for key, values in vary:
            for v in values:
                apply_overrides(base, [f"{key}={v}"])
        combos = list(itertools.product(*[[(k, v) for v in vals] for k, vals in vary])) or [()]
        for combo in combos:
            recipe = apply_overrides(base, [f"{k}={v}" for k, v in combo])
            parts = [f"{_short(k)}={v}" for k, v in combo]
            if len(bases) > 1 or not parts:
                parts.insert(0, label)
            variants.append(Variant(name=",".join(parts), recipe=recipe, changes=dict(combo)))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError("compare", names, "variants with different names (two recipes have "
                          "the same name: rename one)")
    return variants


@dataclass
class CompareSpec:
    """A comparison written down: ``trainwell compare --spec NAME`` runs it."""

    name: str
    description: str
    seeds: list[int]
    variants: list[Variant]
    path: Path | None = None


def _specs_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("trainwell") / "recipes" / "compare"))


def builtin_specs() -> dict[str, str]:
    """``{name: description}`` of the built-in comparison specs."""
    out = {}
    for p in sorted(_specs_dir().glob("*.toml")):
        try:
            out[p.stem] = str(tomllib.loads(p.read_text(encoding="utf-8")).get("description", ""))
        except tomllib.TOMLDecodeError:
            out[p.stem] = "(unreadable)"
    return out


def _spec_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = str(name_or_path).removeprefix("compare_").removesuffix(".toml")
    q = _specs_dir() / f"{stem}.toml"
    if q.is_file():
        return q
    raise ConfigError("--spec", str(name_or_path),
                      "a comparison spec file or a built-in spec: " + ", ".join(builtin_specs()))


def _resolve_relative(name: str, folder: Path | None) -> Any:
    from trainwell.config import resolve

    if folder is not None and (folder / name).is_file():
        return resolve(folder / name)
    return resolve(name)


def load_spec(name_or_path: str | Path) -> CompareSpec:
    """Read a comparison spec (TOML): its seeds and variants, every recipe validated.

    Format::

        name = "fashion_exercise"
        description = "…"
        seeds = [0]
        base = "compare_fashion_swish"      # recipe for variants that name none (optional)
        set = ["train.epochs=10"]           # overrides for every variant (optional)

        [[variants]]
        name = "swish"                      # label in the table
        recipe = "compare_fashion_swish"    # built-in name, or a path relative to the spec
        set = []                            # this variant's overrides (optional)
        mc_samples = 0                      # > 0: also report MC-dropout accuracy

    Raises:
        ConfigError: naming the spec entry and what is accepted.
    """
    from trainwell.config import apply_overrides

    path = _spec_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "invalid TOML", f"valid TOML ({exc})") from None
    allowed = {"name", "description", "seeds", "base", "set", "variants"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{path.name}: {key}", key, sorted(allowed))
    common = list(raw.get("set", []))
    folder = path.parent
    variants: list[Variant] = []
    entries = raw.get("variants", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path.name}: variants", entries, "a list of [[variants]] tables")
    for i, entry in enumerate(entries):
        where = f"{path.name}: variants[{i}]"
        extra = set(entry) - {"name", "recipe", "set", "mc_samples"}
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}", sorted(extra)[0],
                              ["name", "recipe", "set", "mc_samples"])
        recipe_name = entry.get("recipe", raw.get("base"))
        if not recipe_name:
            raise ConfigError(f"{where}.recipe", None, "a recipe name or path (or a top-level "
                              "base)")
        recipe = _resolve_relative(str(recipe_name), folder)
        sets = common + list(entry.get("set", []))
        recipe = apply_overrides(recipe, sets) if sets else recipe
        name = str(entry.get("name") or recipe.name)
        mc = entry.get("mc_samples", 0)
        if not isinstance(mc, int) or mc < 0:
            raise ConfigError(f"{where}.mc_samples", mc, "an integer ≥ 0")
        changes = {"recipe": str(recipe_name)} | {
            k.strip(): v.strip() for k, _, v in (s.partition("=") for s in entry.get("set", []))}
        variants.append(Variant(name=name, recipe=recipe, changes=changes, mc_samples=mc))
    seeds = parse_seeds(raw.get("seeds", [0]))
    return CompareSpec(name=str(raw.get("name", path.stem)),
                       description=str(raw.get("description", "")), seeds=seeds,
                       variants=variants, path=path)


def spec_variants(spec: CompareSpec, overrides: Sequence[str] = ()) -> list[Variant]:
    """The spec's variants with command-line ``--set`` overrides applied last."""
    from trainwell.config import apply_overrides

    if not overrides:
        return list(spec.variants)
    return [Variant(v.name, apply_overrides(v.recipe, list(overrides)), dict(v.changes),
                    v.mc_samples) for v in spec.variants]


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
                   splits: Any = None, console: Any = None) -> Comparison:
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

    Returns:
        The :class:`Comparison` (directory, aggregated rows, every run's outcome).
    """
    from trainwell.config import apply_overrides
    from trainwell.report.rundir import new_run_dir
    from trainwell.workflows.lrfind import resolve_auto_max_lr, wants_auto_max_lr
    from trainwell.workflows.run import fit_recipe

    seeds = parse_seeds(list(seeds))
    if not variants:
        raise ConfigError("compare", [], "at least one variant")
    folder = new_run_dir(out, f"compare-{_safe(name)}")
    runs = folder / "runs"
    cache: dict[str, Any] = {}
    outcomes: list[RunOutcome] = []
    total = len(variants) * len(seeds)
    for k, (seed, variant) in enumerate(itertools.product(seeds, variants), start=1):
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
        if console is not None and not quiet:
            console.print(f"[bold]({k}/{total}) {variant.name}[/bold] seed {seed}")
        extra = list(callbacks(variant, seed)) if callbacks else []
        t0 = time.perf_counter()
        result = fit_recipe(recipe, out=runs, quiet=quiet, splits=data, run_name=run_name,
                            callbacks=extra)
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
        outcomes.append(RunOutcome(
            variant=variant.name, seed=seed, run_dir=str(result.run_dir), status=status,
            epochs=epochs, metric=used_metric, best=best, best_epoch=best_epoch,
            time_per_epoch=statistics.fmean(times) if times else math.nan,
            # the epochs' own times: the first run's one-off warm-up (imports, first kernels,
            # report writing) would otherwise make it look slower than the others
            total_time=math.fsum(times) if times else total_time, mc_accuracy=mc,
            kept_accuracy=kept, max_lr=max_lr))
    used = outcomes[0].metric if outcomes else metric
    rows = comparison_rows(variants, outcomes)
    comparison = Comparison(dir=folder, rows=rows, outcomes=outcomes, metric=used)
    _write_tables(comparison, variants, seeds, name, description)
    plot_comparison(outcomes, folder / "plots")
    write_comparison_report(comparison, title=f"Comparison: {name}", description=description)
    return comparison


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return math.nan, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def comparison_rows(variants: Sequence[Variant], outcomes: Sequence[RunOutcome]
                    ) -> list[dict[str, Any]]:
    """One row per variant: best metric mean ± std over seeds, epoch of the best, timings."""
    rows = []
    for v in variants:
        mine = [o for o in outcomes if o.variant == v.name]
        best, best_std = _mean_std([o.best for o in mine])
        mc, mc_std = _mean_std([o.mc_accuracy for o in mine if o.mc_accuracy is not None])
        kept = _mean_std([o.kept_accuracy for o in mine if o.kept_accuracy is not None])[0]
        rows.append(dict(
            variant=v.name, description=v.recipe.description, changes=dict(v.changes),
            seeds=[o.seed for o in mine],
            metric=mine[0].metric if mine else "", best_mean=best, best_std=best_std,
            best_epochs=[o.best_epoch for o in mine],
            epochs_run=[len(o.epochs) for o in mine],
            time_per_epoch=_mean_std([o.time_per_epoch for o in mine])[0],
            total_time=sum(o.total_time for o in mine),
            mc_mean=mc if any(o.mc_accuracy is not None for o in mine) else None,
            mc_std=mc_std, kept_mean=kept, statuses=sorted({o.status for o in mine}),
            max_lr=[o.max_lr for o in mine if o.max_lr is not None]))
    return rows


def _fmt_metric(mean: float, std: float | None, metric: str) -> str:
    if not math.isfinite(mean):
        return "—"
    if "acc" in metric:
        text = f"{100 * mean:.2f}%"
        return text + (f" ± {100 * std:.2f}" if std is not None else "")
    text = f"{mean:.4f}"
    return text + (f" ± {std:.4f}" if std is not None else "")


def _metric_label(metric: str) -> str:
    return metric.replace("val_", "val ").replace("accuracy", "acc")


def _fmt_seconds(t: float) -> str:
    """Two significant digits below 10 s (a short run never reads "0 s"), whole seconds above."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "—"
    return f"{t:.0f} s" if t >= 10 else f"{t:.2g} s"


def table_cells(row: dict[str, Any]) -> dict[str, str]:
    """The printable cells of one comparison row (shared by the console, CSV and HTML).

    ``best <metric>`` is the mean ± sample standard deviation over the random seeds of each run's
    best epoch value; ``best epoch`` and ``epochs`` list one number per seed.
    """
    metric = row["metric"]
    cells = {
        "variant": row["variant"],
        f"best {_metric_label(metric)}": _fmt_metric(row["best_mean"], row["best_std"], metric),
        "best epoch": ", ".join(str(e) for e in row["best_epochs"]),
        "epochs": ", ".join(str(e) for e in row["epochs_run"]),
        "time/epoch": _fmt_seconds(row["time_per_epoch"]),
        "total time": _fmt_seconds(row["total_time"]),
    }
    if row.get("mc_mean") is not None:
        text = _fmt_metric(row["mc_mean"], row["mc_std"], "accuracy")
        kept = row.get("kept_mean")
        if kept is not None and math.isfinite(kept):
            text += f" ({100 * (row['mc_mean'] - kept):+.2f} vs {100 * kept:.2f}% without MC)"
        cells["MC dropout val acc"] = text
    if row.get("max_lr"):
        cells["max_lr (finder)"] = ", ".join(f"{v:.3g}" for v in row["max_lr"])
    if row["statuses"] != ["completed"]:
        cells["status"] = ", ".join(row["statuses"])
    return cells


def _header(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for c in table_cells(r):
            if c not in cols:
                cols.append(c)
    return cols


def print_table(comparison: Comparison, console: Any = None) -> None:
    """Print the comparison as a rich table (best variant in bold)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    cols = _header(comparison.rows)
    seeds = sorted({o.seed for o in comparison.outcomes})
    table = Table(title=f"{len(comparison.rows)} variants × {len(seeds)} seed(s)",
                  caption=f"mean ± std over seeds {', '.join(map(str, seeds))}; "
                          f"{comparison.dir}")
    longest = max((len(r["variant"]) for r in comparison.rows), default=8)
    for c in cols:
        if c == "variant":
            table.add_column(c, no_wrap=True, min_width=min(longest, 40))
        else:
            table.add_column(c, justify="right")
    best = _best_index(comparison.rows)
    for i, r in enumerate(comparison.rows):
        cells = table_cells(r)
        table.add_row(*[cells.get(c, "") for c in cols], style="bold" if i == best else None)
    console.print(table)


def _best_index(rows: list[dict[str, Any]]) -> int | None:
    scored = [(r["best_mean"], i) for i, r in enumerate(rows) if math.isfinite(r["best_mean"])]
    if not scored:
        return None
    pick = max if "acc" in rows[0]["metric"] else min
    return pick(scored)[1]


def _write_tables(c: Comparison, variants: Sequence[Variant], seeds: Sequence[int], name: str,
                  description: str) -> None:
    cols = _header(c.rows)
    with open(c.dir / "comparison.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in c.rows:
            cells = table_cells(r)
            w.writerow([cells.get(col, "") for col in cols])
    payload = dict(name=name, description=description, seeds=list(seeds), metric=c.metric,
                   rows=c.rows, runs=[asdict(o) for o in c.outcomes],
                   recipes={v.name: v.recipe.model_dump() for v in variants})
    (c.dir / "comparison.json").write_text(json.dumps(payload, indent=2, default=str),
                                           encoding="utf-8")


# --------------------------------------------------------------------------- plots, report
def plot_comparison(outcomes: Sequence[RunOutcome], folder: str | Path) -> list[Path]:
    """Overlaid learning curves (accuracy and loss per epoch; validation solid, training
    dashed) and validation accuracy against wall-clock time, one colour per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(o.variant for o in outcomes))
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    has_acc = any("val_accuracy" in e for o in outcomes for e in o.epochs)
    panels = [("accuracy", "accuracy")] if has_acc else []
    panels.append(("loss", "loss"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for o in outcomes:
            ep = [e.get("epoch", i + 1) for i, e in enumerate(o.epochs)]
            first = o.seed == min(x.seed for x in outcomes if x.variant == o.variant)
            # markers: a one-epoch run is a single point, invisible as a bare line
            ax.plot(ep, [e.get(f"val_{key}", math.nan) for e in o.epochs], color=colors[o.variant],
                    lw=1.8, marker="o", ms=3, label=o.variant if first else None)
            ax.plot(ep, [e.get(key, math.nan) for e in o.epochs], color=colors[o.variant],
                    lw=1, ls="--", marker="o", ms=2, alpha=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs
        last = max((len(o.epochs) for o in outcomes), default=0)
        if last <= 1:
            ax.set_xlim(0.5, 1.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: validation (solid), training (dashed)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    paths = [folder / "learning_curves.png"]
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    key = "val_accuracy" if has_acc else "val_loss"
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    for o in outcomes:
        t = list(itertools.accumulate(float(e.get("time", math.nan)) for e in o.epochs))
        first = o.seed == min(x.seed for x in outcomes if x.variant == o.variant)
        ax.plot(t, [e.get(key, math.nan) for e in o.epochs], marker=".", color=colors[o.variant],
                label=o.variant if first else None)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel(key)
    ax.set_title(f"{key} against wall-clock time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(folder / f"{key}_vs_time.png")
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px}
th{background:#f4f4f4}td{text-align:right}td:first-child{text-align:left}
tr.best{font-weight:bold;background:#eef8ee}img{max-width:100%}code{background:#f4f4f4}"""


def write_comparison_report(c: Comparison, *, title: str = "Comparison",
                            description: str = "") -> Path:
    """A self-contained HTML page: the table, what differs, the plots inline, links to runs."""
    cols = _header(c.rows)
    best = _best_index(c.rows)
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    if description:
        parts.append(f"<p>{e(description)}</p>")
    parts.append("<p>Variants with the same seed share the validation split, the batch order "
                 "and, where the architecture allows, the initial weights.</p>")
    parts.append("<table><tr>" + "".join(f"<th>{e(col)}</th>" for col in cols) + "</tr>")
    for i, r in enumerate(c.rows):
        cells = table_cells(r)
        cls = " class='best'" if i == best else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{e(cells.get(col, ''))}</td>" for col in cols)
                     + "</tr>")
    seeds = ", ".join(str(x) for x in sorted({o.seed for o in c.outcomes}))
    parts.append(f"</table><p>best {e(_metric_label(c.metric))}: mean ± sample standard "
                 f"deviation over seeds {seeds} of each run's best epoch; best epoch and epochs "
                 "run are listed per seed; time/epoch is the mean epoch time (training and "
                 "validation); total time is the sum of the epoch times over all seeds of "
                 "a variant, without start-up and report writing; the best variant is in bold."
                 "</p>")
    parts.append("<h2>What each variant changes</h2><ul>")
    for r in c.rows:
        ch = ", ".join(f"<code>{e(k)} = {e(str(v))}</code>" for k, v in r["changes"].items())
        desc = f" — {e(r['description'])}" if r.get("description") else ""
        parts.append(f"<li><b>{e(r['variant'])}</b>: {ch or 'the base recipe'}{desc}</li>")
    parts.append("</ul><h2>Learning curves</h2>")
    for png in sorted((c.dir / "plots").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<p><img alt='{e(png.stem)}' src='data:image/png;base64,{data}'></p>")
    parts.append("<h2>Runs</h2><ul>")
    for o in c.outcomes:
        rel = Path(o.run_dir)
        try:
            rel = rel.resolve().relative_to(c.dir.resolve())
        except ValueError:
            pass
        link = rel / "report.html"
        parts.append(f"<li>{e(o.variant)}, seed {o.seed}: <a href='{e(link.as_posix())}'>"
                     f"{e(rel.as_posix())}</a> ({e(o.status)}, {len(o.epochs)} epochs)</li>")
    parts.append("</ul></body></html>")
    path = c.dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
