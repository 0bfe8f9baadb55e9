"""MC dropout and calibration of a model or of a run: both scores side by side
(:func:`evaluate_uncertainty`), the reliability diagram and the run report's "Uncertainty"
section. The numbers themselves (MC dropout passes, entropy, ECE) are
:mod:`trainwell.diagnose.uncertainty`; its names are importable from here too.

Example:
    >>> report = evaluate_uncertainty(model, x_test, y_test, mc=100)   # doctest: +SKIP
    >>> report.mc.ece, report.flagged                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainwell.diagnose.uncertainty import (  # noqa: F401 - trainwell.uncertainty keeps every name
    CLASSIFICATION_TASKS,
    MAX_ROWS,
    TASKS,
    UNCERTAIN_ENTROPY,
    CalibrationResult,
    MCResult,
    _as_tensor,
    _check_task,
    _predicted,
    calibration,
    deterministic_predict,
    mc_predict,
)
from trainwell.errors import ConfigError, DataError

__all__ = ["MCResult", "CalibrationResult", "UncertaintyReport", "mc_predict",
           "deterministic_predict", "calibration", "evaluate_uncertainty", "plot_reliability",
           "report_run_uncertainty", "UNCERTAIN_ENTROPY", "MAX_ROWS", "CLASSIFICATION_TASKS"]

@dataclass
class UncertaintyReport:
    """What :func:`evaluate_uncertainty` returns: scores with and without MC dropout.

    Attributes:
        deterministic: calibration of one pass in eval mode (dropout off).
        mc: calibration of the MC dropout mean over ``n_passes`` passes.
        mc_result: the :class:`MCResult` (per-example mean, std, entropy, flags).
        n_passes: N.
        flagged: fraction of examples flagged uncertain.
        accuracy_certain / accuracy_uncertain: MC accuracy on the examples not flagged / flagged
            (NaN when a group is empty): a useful flag makes the first clearly higher.
    """

    deterministic: CalibrationResult
    mc: CalibrationResult
    mc_result: MCResult
    n_passes: int
    flagged: float
    accuracy_certain: float
    accuracy_uncertain: float

    @property
    def calibrations(self) -> dict[str, CalibrationResult]:
        """``{"no MC dropout": …, "MC dropout (N=…)": …}`` for :func:`plot_reliability`."""
        return {"no MC dropout": self.deterministic, f"MC dropout (N={self.n_passes})": self.mc}

    @property
    def table(self) -> list[list[str]]:
        """Rows of cells, header first: method, accuracy, NLL, ECE, MCE, Brier."""
        rows = [["method", "accuracy", "NLL", "ECE", "MCE", "Brier"]]
        for name, c in self.calibrations.items():
            rows.append([name, f"{c.accuracy:.4f}", f"{c.nll:.4f}", f"{c.ece:.4f}",
                         f"{c.mce:.4f}", f"{c.brier:.4f}"])
        return rows

    @property
    def text(self) -> str:
        """One paragraph: the uncertainty rule, how many examples it flags, their accuracy."""
        def pct(v: float) -> str:
            return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"

        return (f"{self.mc_result.rule}: {pct(self.flagged)} of the examples are flagged "
                f"uncertain; MC accuracy {pct(self.accuracy_certain)} on the others and "
                f"{pct(self.accuracy_uncertain)} on the flagged ones.")


def evaluate_uncertainty(model: nn.Module, x: Tensor, y: Tensor, *, mc: int = 30,
                         task: str = "multiclass", n_bins: int = 15, seed: int | None = 0,
                         batch_size: int = 1024,
                         entropy_threshold: float | None = UNCERTAIN_ENTROPY,
                         std_threshold: float | None = None) -> UncertaintyReport:
    """Accuracy, NLL, ECE (and MCE, Brier) with and without MC dropout, on ``(x, y)``.

    Args:
        model: a trained network (its modes are restored afterwards).
        x, y: inputs prepared like the training data, and their labels.
        mc: number of MC dropout passes N. Default 30.
        task: ``"multiclass"`` (default), ``"binary"`` or ``"multilabel"``.
        n_bins: confidence bins of the ECE. Default 15.
        seed: seed of the dropout masks. Default 0.
        batch_size, entropy_threshold, std_threshold: as in :func:`mc_predict`.

    Example:
        >>> rep = evaluate_uncertainty(model, splits.x_test, splits.y_test, mc=50)  # doctest: +SKIP
        >>> rep.table                                                              # doctest: +SKIP
    """
    if task not in CLASSIFICATION_TASKS:
        raise ConfigError("task", task, "a classification task (MC dropout calibration "
                          f"needs probabilities): one of {', '.join(CLASSIFICATION_TASKS)}")
    det = calibration(deterministic_predict(model, x, batch_size=batch_size, task=task), y,
                      n_bins, task=task)
    res = mc_predict(model, x, n=mc, batch_size=batch_size, seed=seed, task=task,
                     entropy_threshold=entropy_threshold, std_threshold=std_threshold)
    mc_cal = calibration(res.mean, y, n_bins, task=task)
    flags = res.uncertain.cpu()                       # host sync: once per evaluation
    yt = torch.as_tensor(y).cpu()
    pred = res.predicted.cpu()
    correct = (pred == yt.reshape(pred.shape).long()).double()
    if correct.dim() > 1:
        correct = correct.mean(-1)

    def acc(mask: Tensor) -> float:
        return float(correct[mask].mean()) if mask.any() else math.nan

    return UncertaintyReport(det, mc_cal, res, mc, float(flags.double().mean()),
                             acc(~flags), acc(flags))


# --------------------------------------------------------------------------- plots
def plot_reliability(results: CalibrationResult | Mapping[str, CalibrationResult],
                     path: str | os.PathLike, *, title: str = "Reliability diagram") -> Path:
    """Draw a reliability diagram (accuracy per confidence bin against the diagonal) as PNG.

    Each result is one line of bin accuracy against bin mean confidence (its ECE in the
    legend); bars below show how many predictions fall in each bin. A perfectly calibrated
    model lies on the diagonal.

    Args:
        results: one :class:`CalibrationResult` or ``{label: result}`` (e.g.
            :attr:`UncertaintyReport.calibrations`).
        path: the PNG file to write (folders are created).
        title: the plot title.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from trainwell.report.plots import save_figure

    if isinstance(results, CalibrationResult):
        results = {"model": results}
    fig = Figure(figsize=(6.0, 6.4), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    ax, ax_n = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    k = max(len(results), 1)
    for i, (label, c) in enumerate(results.items()):
        pts = [(conf, acc) for conf, acc in zip(c.bin_confidence, c.bin_accuracy, strict=True)
               if not math.isnan(conf)]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", linewidth=1.5,
                    label=f"{label} (ECE {c.ece:.3f})")
        width = (c.bin_edges[1] - c.bin_edges[0]) / k
        lefts = [e + i * width for e in c.bin_edges[:-1]]
        ax_n.bar(lefts, c.bin_count, width=width, align="edge", alpha=0.7, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(labelbottom=False)
    ax.grid(alpha=0.3)
    ax_n.set_xlim(0, 1)
    ax_n.set_xlabel("confidence (probability of the predicted class)")
    ax_n.set_ylabel("predictions")
    if any(max(c.bin_count) > 0 for c in results.values()):
        ax_n.set_yscale("log")   # a few bins hold most predictions
    fig.subplots_adjust(left=0.13, right=0.97, top=0.94, bottom=0.09)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- runs
def report_run_uncertainty(run_dir: str | os.PathLike, *, mc: int = 30, split: str = "test",
                           seed: int = 0, n_bins: int = 15, batch_size: int = 1024,
                           entropy_threshold: float | None = UNCERTAIN_ENTROPY,
                           std_threshold: float | None = None, update_report: bool = True,
                           loaded: Any = None, splits: Any = None) -> UncertaintyReport:
    """MC dropout calibration of a trained run on one split, written into the run.

    Loads the run (:func:`trainwell.workflows.run.load_run`) and its data, runs
    :func:`evaluate_uncertainty`, draws ``plots/reliability_<split>.png``, adds the table as
    the summary section "Calibration with MC dropout (<split>)" and rebuilds ``report.html``.

    Args:
        run_dir: a run directory written by ``trainwell fit``.
        mc: number of MC dropout passes N ≥ 1. Default 30.
        split: ``"train"``, ``"val"`` or ``"test"`` (default).
        seed, n_bins, batch_size, entropy_threshold, std_threshold: as in
            :func:`evaluate_uncertainty`.
        update_report: write the plot, the summary section and report.html (default True).
        loaded, splits: the run and its data when the caller already loaded them
            (:func:`trainwell.workflows.run.load_run`, ``loaded.splits_loader()``), to avoid a reload.

    Example:
        >>> rep = report_run_uncertainty("runs/20250101-120000-mc_dropout", mc=100)  # doctest: +SKIP
        >>> print(rep.table)                                                         # doctest: +SKIP
    """
    from trainwell.report.rundir import add_summary_section, write_report
    from trainwell.workflows.run import load_run

    if split not in ("train", "val", "test"):
        raise ConfigError("--split", split, ["train", "val", "test"])
    if not isinstance(mc, int) or mc < 1:
        raise ConfigError("--mc", mc, "a whole number of passes ≥ 1")
    loaded = loaded if loaded is not None else load_run(run_dir)
    splits = splits if splits is not None else loaded.splits_loader()
    x, y = getattr(splits, f"x_{split}", None), getattr(splits, f"y_{split}", None)
    if x is None or len(x) == 0:
        raise DataError(f"--split {split}: the dataset of {run_dir} has no {split} examples")
    rep = evaluate_uncertainty(loaded.model, x, y, mc=mc, task=loaded.task, n_bins=n_bins,
                               seed=seed, batch_size=batch_size,
                               entropy_threshold=entropy_threshold, std_threshold=std_threshold)
    if update_report:
        run = Path(run_dir)
        plot_reliability(rep.calibrations, run / "plots" / f"reliability_{split}.png",
                         title=f"Reliability on the {split} split ({len(x)} examples)")
        has_dropout = any("Dropout" in type(m).__name__ for m in loaded.model.modules())
        note = "" if has_dropout else " The model has no dropout: every MC pass is identical."
        add_summary_section(run, f"Calibration with MC dropout ({split})", rep.table,
                            f"ECE over {n_bins} equal-width confidence bins, seed {seed}. "
                            + rep.text + note)
        write_report(run)
    return rep
