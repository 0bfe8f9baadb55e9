"""The gradient-health part of a run directory: probe samples, verdict, plots, report section."""

from __future__ import annotations

import json
import os
from pathlib import Path

from trainwell.diagnose.plots import plot_diagnostics
from trainwell.diagnose.probes import GradientProbe
from trainwell.diagnose.stats import ProbeRecord
from trainwell.diagnose.verdicts import HEALTHY, REMEDIES, Diagnosis, Thresholds, judge
from trainwell.report.rundir import add_summary_section, read_summary, write_summary

__all__ = ["write_run_diagnostics", "verdict_summary", "SECTION_TITLE"]

#: Title of the run-report section written by :func:`write_run_diagnostics`.
SECTION_TITLE = "Gradient health"


def verdict_summary(diagnosis: Diagnosis) -> dict:
    """The verdict as ``summary.json`` keeps it (``diagnosis``): what a program reads, where
    report.html shows the full section.

    ``verdict`` is the network verdict (``healthy``, ``vanishing``, ...), ``headline`` its
    line, ``remedy`` the first remedy of the first problem (or the all-clear line), and
    ``problems`` every problem found, worst first.
    """
    lines = diagnosis.text().split("\n")
    remedy = REMEDIES[diagnosis.problems[0]].split("\n")[0] if diagnosis.problems \
        else lines[-1]
    return {"verdict": diagnosis.network, "healthy": diagnosis.network == HEALTHY,
            "headline": lines[0], "remedy": remedy, "problems": list(diagnosis.problems)}


def write_run_diagnostics(probe: GradientProbe | ProbeRecord, run_dir: str | os.PathLike,
                          *, thresholds: Thresholds | None = None) -> dict:
    """Save a fit's probe samples and verdict into its run directory.

    Writes ``diagnostics/probes.npz`` (all samples), ``diagnostics/verdict.json``,
    ``plots/gradient_norms.png`` (heatmap of log10 gradient norm per layer over training) and
    ``plots/activation_std.png``, and adds the "Gradient health" section (per-layer table and
    network verdict with remedies) to ``summary.json``, so ``report.html`` shows it; the
    verdict itself is stored as data under ``summary.json``'s ``"diagnosis"`` key.

    Args:
        probe: the :class:`GradientProbe` used in the fit (or its record).
        run_dir: the run directory.
        thresholds: verdict thresholds (default :class:`Thresholds`).

    Returns:
        the verdict as plain data (``network``, ``problems``, ``remedies``, ``layers``) plus
        ``files`` (the paths written).
    """
    run = Path(run_dir)
    record = probe.record() if isinstance(probe, GradientProbe) else probe
    diag_dir = run / "diagnostics"
    files = [record.save(diag_dir / "probes.npz")]
    diagnosis = judge(record, thresholds)
    verdict = diagnosis.to_dict()
    vpath = diag_dir / "verdict.json"
    from trainwell.atomic import atomic_write

    atomic_write(vpath, json.dumps(verdict, indent=2, ensure_ascii=False))
    files.append(vpath)
    files += plot_diagnostics(record, run / "plots")
    header, rows = diagnosis.table()
    add_summary_section(run, SECTION_TITLE, [header, *rows], diagnosis.text())
    summary = read_summary(run)   # the verdict as data: network, problems, borderline, margins
    summary["diagnosis"] = {**verdict, **verdict_summary(diagnosis)}   # + headline, remedy
    write_summary(run, summary)
    verdict["files"] = [str(f) for f in files]
    return verdict
