"""A comparison's table (terminal, JSON, CSV), its overlaid learning curves and report.html."""

from __future__ import annotations

import base64
import csv
import html
import itertools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainwell.studies.compare_spec import (
    Comparison,
    RunOutcome,
    Variant,
    _fmt_metric,
    _metric_label,
)

__all__ = ["comparison_rows", "table_cells", "print_table", "plot_comparison",
           "write_comparison_report"]


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
    from rich.table import Table

    from trainwell.console import make_console

    console = console or make_console()
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
def _mean_curve(runs: Sequence[RunOutcome], key: str
                ) -> tuple[list[int], list[float], list[float]]:
    """Per epoch: the mean of ``key`` over the runs that reached it, and the sample std."""
    longest = max((len(o.epochs) for o in runs), default=0)
    ep, mean, std = [], [], []
    for i in range(longest):
        vals = [float(o.epochs[i][key]) for o in runs if i < len(o.epochs)
                and isinstance(o.epochs[i].get(key), (int, float))
                and math.isfinite(o.epochs[i][key])]
        ep.append(i + 1)
        mean.append(statistics.fmean(vals) if vals else math.nan)
        std.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return ep, mean, std


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
    several = any(sum(o.variant == n for o in outcomes) > 1 for n in names)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for name in names:
            runs = [o for o in outcomes if o.variant == name]
            # markers: a one-epoch run is a single point, invisible as a bare line
            for k, style in ((f"val_{key}", dict(lw=1.8, ms=3)),
                             (key, dict(lw=1, ls="--", ms=2, alpha=0.6))):
                ep, mean, std = _mean_curve(runs, k)
                ax.plot(ep, mean, color=colors[name], marker="o",
                        label=name if k.startswith("val_") else None, **style)
                if any(s > 0 for s in std):  # several seeds: mean ± std band
                    ax.fill_between(ep, [m - s for m, s in zip(mean, std, strict=True)],
                                    [m + s for m, s in zip(mean, std, strict=True)],
                                    color=colors[name], alpha=0.15 if k.startswith("val_")
                                    else 0.07, lw=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs
        last = max((len(o.epochs) for o in outcomes), default=0)
        if last <= 1:
            ax.set_xlim(0.5, 1.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: validation (solid), training (dashed)"
                     + (", mean ± std over seeds" if several else ""), fontsize=10)
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
