"""``advise --try``: train the current recipe and each proposed change side by side.

Every variant runs through :func:`trainwell.studies.compare.run_comparison` with the same seeds, so
each seed gives every variant the same validation split, the same order of mini-batches and,
where the architectures match, the same initial weights. A change *helped* when the
validation metric of the model each run keeps (early stopping's best weights, else the last
ones: what a user of the recipe gets) beats the current recipe's on average over the random
seeds; the paired differences (same seed) give the mean ± std of the gain. ``improved.toml`` is the run's recipe
with the best row's change (or unchanged when nothing beat it); budget overrides passed to
:func:`try_proposals` (fewer epochs, a data limit) are not written into it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TryResult", "try_proposals", "CURRENT"]

CURRENT = "current"


@dataclass
class TryResult:
    """What :func:`try_proposals` measured.

    Attributes:
        comparison: the :class:`~trainwell.compare.Comparison` (directory, rows, runs).
        rows: one per variant: ``variant``, ``sets``, ``mean``, ``std`` (the validation
            metric of the model each run kept: early stopping's best weights, else the last),
            ``best_epoch_mean`` (the comparison table's best epoch), ``gain_mean``,
            ``gain_std`` (paired over the random seeds, in the metric's units; positive = better),
            ``helped``, ``seeds``.
        best: the name of the best variant; improved: the path of ``improved.toml``.
    """

    comparison: Any
    rows: list[dict[str, Any]]
    best: str
    improved: Path
    metric: str
    seeds: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What helped, by how much, as plain lines."""
        pct = "acc" in self.metric
        unit = " points" if pct else ""
        scale = 100 if pct else 1

        def fmt(m: float | None, s: float | None) -> str:
            if m is None or not math.isfinite(m):
                return "—"
            return f"{scale * m:+.2f}" + (f" ± {scale * s:.2f}" if s is not None else "") + unit

        out = []
        for r in self.rows:
            if r["variant"] == CURRENT:
                continue
            verdict = "helped" if r["helped"] else "did not help"
            used = ", ".join(map(str, r["seeds"]))
            gain = fmt(r["gain_mean"], r["gain_std"])
            out.append(f"{r['variant']}: {verdict} ({self.metric} of the kept model {gain} "
                       f"vs current, seeds {used})")
        out.append(f"best: {self.best} → {self.improved}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dir": str(self.comparison.dir), "metric": self.metric, "seeds": self.seeds,
                "best": self.best, "improved": str(self.improved), "rows": self.rows}


def _label(sets: Sequence[str]) -> str:
    """``dropout=0.2`` or ``activation=elu,init=auto``: the change itself names the row."""
    def short(field: str) -> str:
        section, _, name = field.rpartition(".")
        return section if name == "name" else name   # schedule.name=x → schedule=x

    return ",".join(f"{short(k)}={v}" for k, _, v in (s.partition("=") for s in sets))


def _best(rows: list[dict[str, Any]], metric: str) -> int:
    """The best row by mean; a tie keeps the earlier row (the current recipe first): a change
    must beat the current recipe to replace it."""
    sign = 1.0 if "acc" in metric else -1.0
    best = 0
    for i, r in enumerate(rows):
        m, b = r["best_mean"], rows[best]["best_mean"]
        if math.isfinite(m) and (not math.isfinite(b) or sign * (m - b) > 0):
            best = i
    return best


def _kept_metric(outcome: Any, metric: str) -> float:
    """``metric`` of the model the run kept (its summary's final metrics), else the best epoch's."""
    try:
        final = json.loads((Path(outcome.run_dir) / "summary.json").read_text(encoding="utf-8"))
        value = ((final.get("metrics") or {}).get("final") or {}).get(metric)
    except (OSError, ValueError):
        value = None
    return float(value) if isinstance(value, (int, float)) else float(outcome.best)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def try_proposals(advice: Any, *, seeds: Sequence[int] | None = None,
                  overrides: Sequence[str] = (), out: str | Path | None = None,
                  quiet: bool = False, console: Any = None) -> TryResult:
    """Train the run's recipe and each proposal of ``advice`` with the same seeds.

    Args:
        advice: from :func:`trainwell.workflows.advise.advise_run`.
        seeds: seeds for every variant (default: the run's own ``train.seed``).
        overrides: ``section.field=value`` applied to every variant (a budget, e.g.
            ``train.epochs=3``); not written into ``improved.toml``.
        out: parent folder of the comparison (default: the folder holding the run).
        quiet: no per-run progress.

    Returns:
        :class:`TryResult`; the comparison directory holds the usual comparison files plus
        ``improved.toml`` and ``advice_try.json``.

    Raises:
        ConfigError: no proposal to try, or bad seeds / overrides (before any training).
    """
    from trainwell.config import apply_overrides, save_recipe
    from trainwell.errors import ConfigError
    from trainwell.studies.compare import Variant, run_comparison
    from trainwell.train.rng import parse_seeds

    if not advice.proposals:
        raise ConfigError("--try", str(advice.run_dir), "a run with at least one proposed "
                          "change (advise found nothing to change)")
    seeds = parse_seeds(list(seeds)) if seeds else [int(advice.recipe.train.seed)]
    base = apply_overrides(advice.recipe, list(overrides))
    variants = [Variant(CURRENT, base, {})]
    for p in advice.proposals:
        variants.append(Variant(_label(p.sets), apply_overrides(base, p.sets),
                                {s.partition("=")[0]: s.partition("=")[2] for s in p.sets}))
    folder = Path(out) if out is not None else Path(advice.run_dir).parent
    comparison = run_comparison(variants, seeds=seeds, out=folder,
                                name=f"advise-{advice.recipe.name}", quiet=quiet,
                                description=f"advise --try for {advice.run_dir}",
                                console=console)
    metric = comparison.metric
    sign = 1.0 if "acc" in metric else -1.0
    # the model each run keeps (early stopping restores its best weights; a run without it
    # keeps its last ones) — what a user of the recipe gets, so what "helped" is judged on
    kept = {(o.variant, o.seed): _kept_metric(o, metric) for o in comparison.outcomes}
    rows = []
    for v, crow in zip(variants, comparison.rows, strict=True):
        gains = [sign * (kept[(v.name, s)] - kept[(CURRENT, s)]) for s in seeds]
        g_mean, g_std = _mean_std(gains)
        mean, std = _mean_std([kept[(v.name, s)] for s in seeds])
        rows.append({"variant": v.name, "sets": [f"{k}={x}" for k, x in v.changes.items()],
                     "mean": mean, "std": std, "best_epoch_mean": crow["best_mean"],
                     "gain_mean": g_mean, "gain_std": g_std,
                     "helped": bool(v.name != CURRENT and g_mean is not None and g_mean > 0),
                     "seeds": list(crow["seeds"])})
    best = variants[_best([{"best_mean": r["mean"] if r["mean"] is not None else math.nan}
                           for r in rows], metric)]
    improved_recipe = apply_overrides(advice.recipe, [f"{k}={x}" for k, x in best.changes.items()]
                                      + [f"name={advice.recipe.name}-improved"])
    if best.name != CURRENT:
        improved_recipe = apply_overrides(improved_recipe, [
            f"description=advise --try winner over {advice.recipe.name}: {best.name}"])
    improved = save_recipe(improved_recipe, comparison.dir / "improved.toml")
    result = TryResult(comparison, rows, best.name, improved, metric, list(seeds))
    (comparison.dir / "advice_try.json").write_text(json.dumps(result.to_dict(), indent=2),
                                                   encoding="utf-8")
    _record_in_run(advice.run_dir, result)
    return result


def _record_in_run(run_dir: Path, result: TryResult) -> None:
    """The measured table as a section of the advised run's report."""
    from trainwell.report.rundir import add_summary_section, write_report

    pct = "acc" in result.metric
    table = [["variant", "changes", f"kept model's {result.metric}", "gain vs current",
              "helped"]]
    for r in result.rows:
        def f(m, s, signed=False):
            if m is None or not math.isfinite(m):
                return "—"
            k = 100 if pct else 1
            text = f"{k * m:+.2f}" if signed else (f"{k * m:.2f}" if pct else f"{m:.4f}")
            return text + (f" ± {k * s:.2f}" if s is not None else "")
        table.append([r["variant"], ", ".join(r["sets"]) or "—", f(r["mean"], r["std"]),
                      "—" if r["variant"] == CURRENT else f(r["gain_mean"], r["gain_std"], True),
                      "" if r["variant"] == CURRENT else ("yes" if r["helped"] else "no")])
    add_summary_section(run_dir, "Advice — tried side by side", table,
                        "\n".join(result.lines()) + f"\ncomparison: {result.comparison.dir}")
    write_report(run_dir)
