"""MC dropout predictions, uncertainty flags and calibration (accuracy, NLL, ECE, reliability).

MC dropout (Gal & Ghahramani, 2016; the chapter's "risk-sensitive application" guideline)
keeps dropout active at inference and averages N stochastic passes::

    p̄(x) = 1/N · Σₜ softmax(f(x; dropout mask t))

Batch norm stays in eval mode (running statistics, never updated). The spread of the N
passes and the entropy of p̄ say how unsure the network is; :func:`calibration` says whether
its confidences can be trusted (expected calibration error, ECE).

Example:
    >>> res = mc_predict(model, x_test, n=100, seed=0)            # doctest: +SKIP
    >>> res.mean.shape, res.entropy.shape, res.uncertain.sum()     # doctest: +SKIP
    >>> cal = calibration(res.mean, y_test)                        # doctest: +SKIP
    >>> cal.ece                                                    # doctest: +SKIP
    0.021
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainwell.errors import ConfigError, DataError
from trainwell.nn.mc import mc_dropout_mode

__all__ = ["MCResult", "CalibrationResult", "UncertaintyReport", "mc_predict",
           "deterministic_predict", "calibration", "evaluate_uncertainty", "plot_reliability",
           "report_run_uncertainty", "UNCERTAIN_ENTROPY", "MAX_ROWS", "CLASSIFICATION_TASKS"]

#: Default rule: an example is uncertain when the entropy of its mean prediction exceeds
#: this fraction of the maximum entropy (log C for C classes, log 2 per binary output).
UNCERTAIN_ENTROPY = 0.5
#: At most this many rows (examples × passes) go through the network in one forward.
MAX_ROWS = 32768
CLASSIFICATION_TASKS = ("multiclass", "binary", "multilabel")
TASKS = (*CLASSIFICATION_TASKS, "regression")


# --------------------------------------------------------------------------- results
@dataclass
class MCResult:
    """What :func:`mc_predict` returns, one row per example (tensors on the model's device).

    Attributes:
        mean: mean probabilities over the N passes, shape (n, C) (regression: mean outputs).
        std: their standard deviation over the passes (population std), shape (n, C).
        entropy: predictive entropy of ``mean`` in nats, shape (n,):
            H = −Σ_c p̄_c·log p̄_c (multiclass); Σ over outputs of the Bernoulli entropies
            (binary/multilabel); ``None`` for regression.
        mutual_info: H(p̄) − 1/N·Σₜ H(pₜ), the part of the entropy that comes from the
            disagreement of the passes (model, "epistemic" uncertainty); ``None`` for regression.
        uncertain: bool flags, shape (n,), from ``rule``.
        predicted: argmax class (multiclass), 0/1 per output (binary/multilabel) or ``mean``.
        n_passes: N.
        rule: the rule that set ``uncertain``, in words.
        task: the task the probabilities were computed for.
    """

    mean: Tensor
    std: Tensor
    entropy: Tensor | None
    mutual_info: Tensor | None
    uncertain: Tensor
    predicted: Tensor
    n_passes: int
    rule: str

    task: str = "multiclass"

    @property
    def max_entropy(self) -> float:
        """The largest possible entropy: log C (multiclass) or k·log 2 (k sigmoid outputs)."""
        return _max_entropy(self.mean, self.task)


@dataclass
class CalibrationResult:
    """What :func:`calibration` returns.

    Attributes:
        accuracy: fraction of correct predictions.
        nll: mean negative log-likelihood of the true labels, −1/n·Σ log p(yᵢ|xᵢ)
            (probabilities clamped at 1e-12).
        ece: expected calibration error, Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|, with equal-width
            confidence bins B_b = ((b−1)/M, b/M].
        mce: maximum calibration error, max over non-empty bins of |acc − conf|.
        brier: mean over examples of Σ_c (p_c − 1[y = c])².
        n: number of predictions scored.
        bin_edges: the M + 1 edges 0, 1/M, …, 1.
        bin_count, bin_accuracy, bin_confidence: per-bin data of the reliability diagram
            (accuracy/confidence are NaN in empty bins).
    """

    accuracy: float
    nll: float
    ece: float
    mce: float
    brier: float
    n: int
    bin_edges: list[float]
    bin_count: list[int]
    bin_accuracy: list[float]
    bin_confidence: list[float]

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain Python values, JSON-ready (empty bins' NaN become ``None``)."""
        def clean(v: Any) -> Any:
            if isinstance(v, list):
                return [clean(e) for e in v]
            return None if isinstance(v, float) and math.isnan(v) else v

        return {k: clean(getattr(self, k)) for k in self.__dataclass_fields__}


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


# --------------------------------------------------------------------------- helpers
def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError("task", task, list(TASKS))
    return task


def _probabilities(logits: Tensor, task: str) -> Tensor:
    if task == "multiclass":
        return torch.softmax(logits.float(), dim=-1)
    if task in ("binary", "multilabel"):
        return torch.sigmoid(logits.float())
    return logits.float()


def _entropy(p: Tensor, task: str) -> Tensor:
    """Entropy in nats along the last dim (0·log 0 = 0), one value per example."""
    if task == "multiclass":
        return -torch.xlogy(p, p).sum(-1)
    bern = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p))   # each output a Bernoulli
    return bern.reshape(*p.shape[:1], -1).sum(-1) if p.dim() > 1 else bern


def _max_entropy(p: Tensor, task: str) -> float:
    n_out = p.shape[-1] if p.dim() > 1 else 1
    return math.log(n_out) if task == "multiclass" else n_out * math.log(2)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _predicted(mean: Tensor, task: str) -> Tensor:
    if task == "multiclass":
        return mean.argmax(-1)
    if task in ("binary", "multilabel"):
        return (mean > 0.5).long()
    return mean


# --------------------------------------------------------------------------- predictions
def deterministic_predict(model: nn.Module, x: Tensor, *, batch_size: int = 1024,
                          task: str = "multiclass") -> Tensor:
    """Probabilities of one pass in eval mode (dropout off), batch by batch.

    The model's train/eval modes are restored afterwards.
    """
    _check_task(task)
    device, was_training, out = _device(model), model.training, []
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                out.append(_probabilities(model(x[lo:lo + batch_size].to(device)), task))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def mc_predict(model: nn.Module, x: Tensor, *, n: int = 30, batch_size: int = 1024,
               seed: int | None = None, task: str = "multiclass",
               entropy_threshold: float | None = UNCERTAIN_ENTROPY,
               std_threshold: float | None = None) -> MCResult:
    """MC dropout: N stochastic passes with only dropout active, averaged.

    ``p̄ = 1/N·Σₜ pₜ`` and ``std = √(1/N·Σₜ (pₜ − p̄)²)`` per example and class, with batch norm
    in eval mode (running statistics used, never updated; see
    :func:`trainwell.nn.mc_dropout_mode`). The N passes of a batch run as one forward pass of
    the batch stacked N times (one independent dropout mask per copy), so memory grows with
    ``n·batch_size`` rows.

    Uncertainty rule: an example is flagged when the entropy of p̄ is above
    ``entropy_threshold`` × the maximum entropy (log C for C classes; log 2 per binary
    output), **or** when the std of its predicted class's probability is above
    ``std_threshold``. Either test is off when its threshold is ``None``; regression uses
    the largest output std only.

    Args:
        model: a network with dropout layers (without any, every pass is the same and std is 0).
        x: inputs, prepared like the training data; moved batch by batch to the model's device.
        n: number of passes N ≥ 1. Default 30.
        batch_size: examples per forward (N·batch_size rows, capped at :data:`MAX_ROWS`).
            Default 1024.
        seed: seeds the dropout masks (reproducible); the global RNG state is restored
            afterwards. ``None`` draws from (and advances) the global RNG.
        task: ``"multiclass"`` (softmax, default), ``"binary"``/``"multilabel"`` (sigmoid)
            or ``"regression"`` (raw outputs).
        entropy_threshold: fraction in (0, 1] of the maximum entropy. Default 0.5.
        std_threshold: std of the predicted class's probability (regression: of an output).
            Default ``None`` (off).

    Returns:
        :class:`MCResult`.

    Example:
        >>> res = mc_predict(model, x, n=100, seed=0)      # doctest: +SKIP
        >>> res.mean[res.uncertain]                        # doctest: +SKIP
    """
    _check_task(task)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError("mc", n, "a whole number of passes ≥ 1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "a whole number ≥ 1")
    if entropy_threshold is not None and not 0 < entropy_threshold <= 1:
        raise ConfigError("entropy_threshold", entropy_threshold,
                          "a fraction of the maximum entropy in (0, 1], or None")
    if std_threshold is not None and not std_threshold > 0:
        raise ConfigError("std_threshold", std_threshold, "a number > 0, or None")
    if len(x) == 0:
        raise DataError("mc_predict: no examples to predict")
    device = _device(model)
    devices = [device] if device.type == "cuda" else []
    means, stds, mis = [], [], []
    # fork_rng: a seeded run leaves the caller's random stream exactly as it was.
    rng = torch.random.fork_rng(devices=devices) if seed is not None else nullcontext()
    with rng, torch.no_grad(), mc_dropout_mode(model):
        if seed is not None:
            torch.manual_seed(seed)
        chunk = max(1, min(batch_size, MAX_ROWS // n))   # bound the stacked batch's memory
        for lo in range(0, len(x), chunk):
            xb = x[lo:lo + chunk].to(device)
            b = len(xb)
            stacked = xb.unsqueeze(0).expand(n, *xb.shape).reshape(n * b, *xb.shape[1:])
            p = _probabilities(model(stacked), task).reshape(n, b, -1)   # (N, b, C)
            mean = p.mean(0)
            means.append(mean)
            stds.append(p.std(0, correction=0))
            if task != "regression":
                mis.append(_entropy(mean, task) -
                           _entropy(p.reshape(n * b, -1), task).reshape(n, b).mean(0))
    mean, std = torch.cat(means), torch.cat(stds)
    predicted = _predicted(mean, task)
    flags = torch.zeros(len(mean), dtype=torch.bool, device=mean.device)
    parts = []
    entropy = mutual_info = None
    if task != "regression":
        entropy = _entropy(mean, task)
        mutual_info = torch.cat(mis).clamp_min(0)
        if entropy_threshold is not None:
            flags |= entropy > entropy_threshold * _max_entropy(mean, task)
            parts.append(f"entropy of the mean prediction > {entropy_threshold:g} × its "
                         "maximum")
        if std_threshold is not None:
            if task == "multiclass":
                spread = std.gather(-1, predicted[:, None]).squeeze(-1)
            else:
                spread = std.amax(-1)
            flags |= spread > std_threshold
            parts.append(f"std of the predicted probability > {std_threshold:g}")
    elif std_threshold is not None:
        flags |= std.amax(-1) > std_threshold
        parts.append(f"std of an output > {std_threshold:g}")
    rule = "uncertain when " + " or ".join(parts) if parts else "no uncertainty rule"
    return MCResult(mean, std, entropy, mutual_info, flags, predicted, n, rule, task)


# --------------------------------------------------------------------------- calibration
def _as_tensor(a: Any, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(a).detach().to("cpu", dtype)   # host sync: once per evaluation


def calibration(probs: Any, y: Any, n_bins: int = 15, *, task: str | None = None
                ) -> CalibrationResult:
    """Accuracy, NLL, expected calibration error and the reliability-diagram data.

    Confidence is the probability of the predicted class (multiclass: max_c p_c; binary and
    multilabel: max(p, 1 − p) for each output, each output counted as one prediction).
    Predictions fall in M equal-width bins B_b = ((b−1)/M, b/M] by confidence, and

        ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|      (Guo et al., 2017)

    with acc/conf the bin's accuracy and mean confidence; MCE = max_b |acc − conf|.

    Args:
        probs: probabilities, shape (n, C) summing to 1 (multiclass), or (n,) / (n, k) of
            sigmoid outputs (binary/multilabel).
        y: true labels: class indices (n,) for multiclass, 0/1 of the probs' shape otherwise.
        n_bins: M ≥ 1. Default 15.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``; default: multiclass when
            probs is 2-D with ≥ 2 columns and y is 1-D, else binary.

    Example:
        >>> c = calibration(torch.tensor([[0.9, 0.1], [0.4, 0.6]]), torch.tensor([0, 0]), 10)
        >>> round(c.accuracy, 2), round(c.ece, 2)
        (0.5, 0.35)
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError("n_bins", n_bins, "a whole number ≥ 1")
    p = _as_tensor(probs, torch.float64)
    if task is None:
        task = "multiclass" if p.dim() == 2 and p.shape[1] >= 2 and \
            torch.as_tensor(y).dim() == 1 else "binary"
    if task not in CLASSIFICATION_TASKS:
        raise ConfigError("task", task, list(CLASSIFICATION_TASKS))
    if task == "multiclass":
        t = _as_tensor(y, torch.long).reshape(-1)
        if p.dim() != 2 or len(p) != len(t):
            raise DataError(f"calibration: probabilities of shape {tuple(p.shape)} do not fit "
                            f"{len(t)} class labels")
        conf, pred = p.max(1)
        correct = (pred == t).double()
        p_true = p.gather(1, t[:, None]).squeeze(1)
        brier = ((p - nn.functional.one_hot(t, p.shape[1]).double()) ** 2).sum(1).mean()
    else:
        t = _as_tensor(y, torch.float64).reshape(-1)
        p = p.reshape(-1)
        if len(p) != len(t):
            raise DataError(f"calibration: {len(p)} probabilities do not fit {len(t)} labels")
        conf = torch.maximum(p, 1 - p)
        correct = ((p > 0.5).double() == (t > 0.5).double()).double()
        p_true = torch.where(t > 0.5, p, 1 - p)
        brier = (2 * (p - t) ** 2).mean()   # Σ over both classes of a Bernoulli output
    n = len(conf)
    if n == 0:
        raise DataError("calibration: no predictions to score")
    # bin b holds confidences in ((b-1)/M, b/M]; confidence 0 goes to the first bin
    idx = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    acc_sum = torch.bincount(idx, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    nonempty = count > 0
    bin_acc = torch.where(nonempty, acc_sum / count.clamp_min(1), torch.nan)
    bin_conf = torch.where(nonempty, conf_sum / count.clamp_min(1), torch.nan)
    gap = (bin_acc - bin_conf).abs()
    ece = (count[nonempty] / n * gap[nonempty]).sum()
    mce = gap[nonempty].max() if nonempty.any() else torch.tensor(0.0)
    nll = -p_true.clamp_min(1e-12).log().mean()
    return CalibrationResult(
        accuracy=float(correct.mean()), nll=float(nll), ece=float(ece), mce=float(mce),
        brier=float(brier), n=n, bin_edges=[b / n_bins for b in range(n_bins + 1)],
        bin_count=[int(c) for c in count.tolist()], bin_accuracy=bin_acc.tolist(),
        bin_confidence=bin_conf.tolist())


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
