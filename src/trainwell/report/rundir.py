"""The run directory: a fresh folder per run, ``summary.json`` and its sections, report.html.

Every command that trains writes the same layout (docs/internals.md § Run directories)::

    runs/<YYYYmmdd-HHMMSS>-<name>/
      recipe.toml  history.csv  history.json  checkpoints/  model/  summary.json
      plots/*.png  diagnostics/  report.html

A feature adds its part of the report with :func:`add_summary_section` (every section of
``summary.json`` and every PNG in ``plots/`` appears in ``report.html``), so no lower module
needs the code that trains a recipe.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainwell.atomic import atomic_write
from trainwell.errors import ConfigError, TrainwellRuntimeWarning

__all__ = [
    "SUMMARY",
    "new_run_dir",
    "resolve_run_dir",
    "read_summary",
    "write_summary",
    "add_summary_section",
    "send_learning_curves",
    "write_report",
]

SUMMARY = "summary.json"


# --------------------------------------------------------------------------- folders
def new_run_dir(out: str | os.PathLike = "runs", name: str = "run") -> Path:
    """Create and return a fresh ``out/<YYYYmmdd-HHMMSS>-<name>`` folder.

    An existing folder is never reused: ``-2``, ``-3``, ... is appended until ``mkdir``
    succeeds (atomic, so two processes never share one).

    Raises:
        ConfigError: ``--out`` when ``out`` (or a parent of it) is an existing file.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError("--out", str(root), "a folder for the run directories (that path is a file)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a parent of ``out`` is a file
        raise ConfigError("--out", str(root), "a folder for the run directories (a parent of "
                          "that path is a file)") from None
    except OSError as exc:  # read-only, no permission, ...
        raise ConfigError("--out", str(root), f"a folder where run directories can be created "
                          f"({exc.strerror or exc})") from None
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    for i in range(1, 10_000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError("--out", str(root), f"a folder where run directories can be "
                              f"created ({exc.strerror or exc})") from None
        return candidate
    raise ConfigError("--out", str(root), "a folder where a new run directory can be created")


def resolve_run_dir(run: str | os.PathLike, *, field: str = "RUN") -> Path:
    """``run`` as an existing run directory (one holding a non-empty ``recipe.toml``).

    An empty ``recipe.toml`` is refused rather than read as the all-defaults recipe: the run
    was not trained with that.
    """
    p = Path(run)
    if not (p.is_dir() and (p / "recipe.toml").is_file()):
        raise ConfigError(field, str(run), "a run directory written by `trainwell fit` "
                          "(a folder holding recipe.toml)")
    try:
        empty = not (p / "recipe.toml").read_bytes().strip()
    except OSError as exc:
        raise ConfigError(field, str(run), f"a run directory whose recipe.toml can be read "
                          f"({exc.strerror or exc})") from None
    if empty:
        before = p / "recipe.before-resume.toml"
        hint = f"; {before.name} holds the recipe before the last --force-resume" \
            if before.is_file() else ""
        raise ConfigError(field, str(run), f"a run directory with its recipe: {p / 'recipe.toml'} "
                          f"is empty (damaged), and an empty recipe is not the one that run "
                          f"used{hint}")
    return p


# --------------------------------------------------------------------------- summary
def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``summary.json`` of a run (an empty dict when there is none yet).

    The summary is derived metadata: a damaged one warns and reads as empty, so that resume,
    evaluate, predict and export still work from the intact checkpoints and model (the next
    write replaces it).
    """
    p = Path(run_dir) / SUMMARY
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        data = exc
    if not isinstance(data, dict):
        warnings.warn(f"{p} is damaged ({data if isinstance(data, Exception) else 'not a table'}"
                      f"); ignoring it — it is rewritten when the run is next saved",
                      TrainwellRuntimeWarning, stacklevel=2)
        return {}
    return data


def write_summary(run_dir: str | os.PathLike, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically (exclusive temporary file + rename)."""
    p = Path(run_dir) / SUMMARY
    return atomic_write(p, json.dumps(_json_safe(summary), indent=2, ensure_ascii=False))


def add_summary_section(run_dir: str | os.PathLike, title: str,
                        table: Sequence[Sequence[Any]] | None = None, text: str = "") -> None:
    """Add (or replace, by title) a section of ``summary.json``; ``report.html`` shows it.

    Args:
        run_dir: the run directory.
        title: the section heading; a section with the same title is replaced.
        table: rows of cells, the first row being the header (optional).
        text: a paragraph shown under the heading (optional).

    Example:
        >>> add_summary_section(run, "Export", [["format", "size"], ["onnx", "1.1 MB"]])  # doctest: +SKIP
    """
    summary = read_summary(run_dir)
    sections = [s for s in summary.get("sections", []) if s.get("title") != title]
    sections.append({"title": str(title),
                     "table": [[c for c in row] for row in table] if table else None,
                     "text": str(text or "")})
    summary["sections"] = sections
    write_summary(run_dir, summary)


# --------------------------------------------------------------------------- report
def send_learning_curves(run_dir: str | os.PathLike,
                         lr_curve: dict[str, Sequence[float]] | None = None) -> None:
    """Draw the learning curves of the run's ``history.json`` into ``plots/`` — in the figure
    worker when one runs (:mod:`trainwell.report.figure_worker`: then they are on disk after
    :func:`~trainwell.report.figure_worker.finish_figures`), else now."""
    from trainwell.report import figure_worker

    run = Path(run_dir)
    figure_worker.draw("learning_curves", _read_history(run), str(run / "plots"),
                       lr_curve=lr_curve)


def write_report(run_dir: str | os.PathLike, *, curves: bool = True) -> Path:
    """Draw the learning-curve plots and write the self-contained ``report.html``.

    Every PNG in ``plots/`` and every section of ``summary.json`` appears in the report, so
    features (diagnosis, transfer, export) add content without touching this function.
    ``curves=False``: the curves were already sent (:func:`send_learning_curves`).
    """
    from trainwell.report import figure_worker, html, plots

    run = Path(run_dir)
    history = _read_history(run)
    summary = read_summary(run)
    if curves:
        send_learning_curves(run, summary.get("lr_curve"))
    note = plots.fit_diagnosis(history, (summary.get("metrics") or {}).get("final"))
    if note:
        summary["fit_note"] = note
        write_summary(run, summary)
    figure_worker.finish_figures()  # every PNG on disk before the report embeds them
    return html.write_html_report(run)


def _read_history(run: Path) -> list[dict[str, Any]]:
    p = run / "history.json"
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []
