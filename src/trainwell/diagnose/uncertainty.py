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
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainwell.errors import ConfigError, DataError
from trainwell.nn.mc import mc_dropout_mode

__all__ = ["MCResult", "CalibrationResult", "mc_predict", "deterministic_predict", "calibration",
           "UNCERTAIN_ENTROPY", "MAX_ROWS", "CLASSIFICATION_TASKS"]

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
