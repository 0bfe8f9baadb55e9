"""Statistics over seeds shared by the chapter's studies: mean ± std, the per-seed table (printed
with rich) and the bar chart of each arm's mean test accuracy with every seed as a dot."""

from __future__ import annotations

import os
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainwell.figures import new_figure, save_figure

__all__ = ["mean_std", "seed_table", "print_table", "plot_bars"]


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (n − 1; 0 for one value), min and max."""
    vals = [float(v) for v in values]
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "min": min(vals), "max": max(vals), "n": len(vals)}


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def seed_table(rows: Sequence[dict[str, Any]], arms: Sequence[tuple[str, str]],
               stats: dict[str, dict[str, float]], *, extra: Sequence[str] = ()
               ) -> list[list[str]]:
    """Header + one row per seed + mean and std rows, accuracies as percentages."""
    header = ["seed", *(label for _, label in arms), *extra]
    table = [header]
    for r in rows:
        table.append([str(r["seed"]), *(_pct(r[k]) for k, _ in arms),
                      *(str(r.get(e, "")) for e in extra)])
    table.append(["mean", *(_pct(stats[k]["mean"]) for k, _ in arms), *("" for _ in extra)])
    table.append(["std", *(_pct(stats[k]["std"]) for k, _ in arms), *("" for _ in extra)])
    return table


def print_table(table: list[list[str]], title: str, console: Any) -> None:
    """Print a table (header first) with rich."""
    from rich.table import Table

    t = Table(title=title)
    for i, h in enumerate(table[0]):
        t.add_column(h, justify="left" if i == 0 else "right")
    for row in table[1:]:
        style = "bold" if row[0] in ("mean", "std") else None
        t.add_row(*row, style=style)
    console.print(t)


def plot_bars(rows: Sequence[dict[str, Any]], arms: Sequence[tuple[str, str]],
              stats: dict[str, dict[str, float]], path: str | os.PathLike, title: str) -> Path:
    """Bars of the mean test accuracy (± std) of each arm, with each seed as a dot."""
    fig, ax = new_figure(7.0, 4.2)
    xs = list(range(len(arms)))
    means = [100 * stats[k]["mean"] for k, _ in arms]
    stds = [100 * stats[k]["std"] for k, _ in arms]
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    ax.bar(xs, means, yerr=stds, capsize=6, color=colors[:len(arms)], alpha=0.8)
    for i, (k, _) in enumerate(arms):
        ys = [100 * r[k] for r in rows]
        ax.scatter([i + (j - (len(ys) - 1) / 2) * 0.06 for j in range(len(ys))], ys,
                   color="black", s=12, zorder=3)
        ax.text(i, means[i] + stds[i] + 0.3, f"{means[i]:.2f}%", ha="center", va="bottom",
                fontsize=9)
    lo = min(min(100 * r[k] for r in rows) for k, _ in arms)
    ax.set_ylim(max(0.0, lo - 5), 100.5)
    ax.set_xticks(xs)
    # long arm names on two or three lines, so that neighbouring labels never overlap
    ax.set_xticklabels([textwrap.fill(label, 18) for _, label in arms], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
