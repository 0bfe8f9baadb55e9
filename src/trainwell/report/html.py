"""The self-contained ``report.html`` of a run directory (inline CSS, images as base64).

It shows the status, the final and best metrics, the fit diagnosis, every PNG in ``plots/``,
every section of ``summary.json`` (added by diagnosis, transfer, export, ...), the history
table and the recipe — read from the run directory's files, so any feature that writes a
plot or a section appears without changes here.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from trainwell.atomic import atomic_write

__all__ = ["render_html", "write_html_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.completed,.stopped{background:#2e7d32}.diverged{background:#c62828}
.interrupted{background:#ef6c00}.other{background:#546e7a}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:.5rem .8rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}
.plots img{max-width:520px;border:1px solid #eee}figcaption{font-size:.8rem;color:#666}
.muted{color:#777;font-size:.85rem}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    if v is None:
        return "—"
    return str(v)


def _table(rows: list[list[Any]], header: bool = True) -> str:
    if not rows:
        return ""
    out = ["<table>"]
    for i, row in enumerate(rows):
        tag = "th" if header and i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{_e(_fmt(c))}</{tag}>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


_SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))


def _metrics_table(summary: dict[str, Any]) -> str:
    """Final metrics: a metric × split table for ``<split>_<metric>`` keys, else name/value.

    Splits without any value get no column, so no column is all "—".
    """
    final = {k: v for k, v in ((summary.get("metrics") or {}).get("final") or {}).items()
             if v is not None}
    if not final:
        return ""
    if not all(k.split("_", 1)[0] in ("train", "val", "test") and "_" in k for k in final):
        return _table([["metric", "value"]] + [[k.replace("_", " "), v]
                                                for k, v in final.items()])
    names: list[str] = []
    for key in final:
        metric = key.split("_", 1)[1]
        if metric not in names:
            names.append(metric)
    splits = [(p, label) for p, label in _SPLITS if any(f"{p}_{m}" in final for m in names)]
    rows: list[list[Any]] = [["metric", *[label for _, label in splits]]]
    for m in names:
        rows.append([m, *[final.get(f"{p}_{m}") for p, _ in splits]])
    return _table(rows)


def _overview_table(summary: dict[str, Any]) -> str:
    metrics = summary.get("metrics") or {}
    best = metrics.get("best_monitored") or metrics.get("best") or {}
    best_acc = metrics.get("best_val_accuracy") or {}
    params = summary.get("parameters") or {}
    versions = summary.get("versions") or {}
    data = summary.get("dataset") or {}
    rows: list[list[Any]] = [["", ""]]
    if best:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in best.items()
                          if k.startswith(("val_", "loss", "accuracy")))
        rows.append([f"best epoch by {best.get('monitor')}", f"{best.get('epoch')}: {shown}"])
    if best_acc:
        rows.append(["best validation accuracy",
                     f"{_fmt(best_acc.get('val_accuracy'))} (epoch {best_acc.get('epoch')})"])
    for label, value in [
        ("epochs run", summary.get("epochs_run")), ("iterations", summary.get("steps")),
        ("total time (s)", summary.get("total_time")),
        ("median epoch time (s)", summary.get("median_epoch_time")),
        ("parameters", f"{params.get('total', 0):,} ({params.get('trainable', 0):,} trainable)"
         if params else None),
        ("dataset", _dataset_text(data) if data else None),
        ("seed", summary.get("seed")), ("device", summary.get("device")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("finished", summary.get("finished")),
    ]:
        if value not in (None, ""):
            rows.append([label, value])
    return _table(rows[1:], header=False)


def _dataset_text(data: dict[str, Any]) -> str:
    sizes = ", ".join(f"{label} {data[k]:,}" for k, label in (
        ("n_train", "train"), ("n_val", "validation"), ("n_test", "test"))
        if isinstance(data.get(k), int))
    held = data.get("test_held_out")
    note = (f" (the test set is {100 * held:.0f} % of the file, held out because it has no "
            f"x_test/y_test)" if isinstance(held, (int, float)) and held > 0 else "")
    return f"{data.get('name') or 'data'}" + (f" — {sizes}" if sizes else "") + note


def _history_table(history: list[dict[str, Any]]) -> str:
    if not history:
        return "<p class='muted'>No epochs recorded.</p>"
    keys: list[str] = []
    for row in history:
        for k in row:
            if k not in keys:
                keys.append(k)
    return _table([keys] + [[row.get(k) for k in keys] for row in history])


def _images(plots_dir: Path) -> str:
    if not plots_dir.is_dir():
        return ""
    files = sorted(plots_dir.glob("*.png"))
    first = ["loss.png", "accuracy.png", "mae.png", "lr.png"]
    files.sort(key=lambda p: (first.index(p.name) if p.name in first else len(first), p.name))
    out = ["<div class='plots'>"]
    for p in files:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        out.append(f"<figure><img alt='{_e(p.stem)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{_e(p.name)}</figcaption></figure>")
    out.append("</div>")
    return "\n".join(out)


def _sections(summary: dict[str, Any]) -> str:
    out = []
    for s in summary.get("sections") or []:
        if not isinstance(s, dict):
            continue
        out.append(f"<h2>{_e(s.get('title', ''))}</h2>")
        if s.get("text"):
            for para in str(s["text"]).split("\n\n"):
                out.append(f"<p>{_e(para)}</p>")
        table = s.get("table")
        if table:
            out.append(_table([list(r) for r in table]))
    return "\n".join(out)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def render_html(run_dir: str | os.PathLike) -> str:
    """The report of ``run_dir`` as one HTML string (nothing fetched from outside)."""
    run = Path(run_dir)
    summary = _read_json(run / "summary.json", {})
    history = _read_json(run / "history.json", [])
    recipe = (run / "recipe.toml").read_text(encoding="utf-8") \
        if (run / "recipe.toml").is_file() else ""
    status = str(summary.get("status", "unknown"))
    css_class = status if status in ("completed", "stopped", "diverged", "interrupted") \
        else "other"
    name = summary.get("name") or run.name
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>trainwell — {_e(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(name)}</h1>",
        f"<p class='muted'>{_e(run)}</p>",
    ]
    if summary.get("description"):
        parts.append(f"<p>{_e(summary['description'])}</p>")
    parts.append(f"<p><span class='status {css_class}'>{_e(status)}</span> "
                 f"{_e(summary.get('message', ''))}</p>")
    note = summary.get("fit_note")
    if isinstance(note, dict) and note.get("text"):
        parts.append(f"<p class='note'>{_e(note['text'])}</p>")
    results = _metrics_table(summary) + _overview_table(summary)
    parts += (["<h2>Results</h2>", results] if results else []) + [
              "<h2>Plots</h2>", _images(run / "plots") or "<p class='muted'>No plots.</p>",
              _sections(summary)]
    if history or summary.get("epochs_run") is not None:  # a study has no single history
        parts += ["<h2>History</h2>", _history_table(history)]
    if recipe.strip():
        parts += ["<h2>Recipe</h2>", f"<pre>{_e(recipe)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    run = Path(run_dir)
    path = run / "report.html"
    atomic_write(path, render_html(run))
    return path
