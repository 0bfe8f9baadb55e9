"""Learning tasks: the loss, the output probabilities and the metrics of each kind of problem.

Models output **logits**; a :class:`Task` turns them into a loss, probabilities and metric sums.

================  ===========================  ===================  ======================
task              loss                         probabilities        metrics (per sample)
================  ===========================  ===================  ======================
``multiclass``    cross-entropy on logits      softmax              loss, accuracy
``binary``        BCE-with-logits (1 output)   sigmoid              loss, accuracy
``multilabel``    BCE-with-logits per output   sigmoid per output   loss, accuracy (mean
                                                                    over outputs)
``regression``    MSE, or Huber (δ = 1)        identity             loss, mae
================  ===========================  ===================  ======================

Example:
    >>> import torch
    >>> task = get_task("multiclass")
    >>> logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    >>> {k: round(float(v), 4) for k, v in task.metric_sums(logits, y).items()}
    {'loss': 1.4402, 'accuracy': 1.0}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from trainwell.checks import check_field
from trainwell.errors import ConfigError, DataError
from trainwell.registry import Registry

__all__ = ["TASKS", "Task", "get_task", "task_with_loss", "check_label_smoothing"]

TASKS = Registry("task")

Tensor = torch.Tensor


def _align(logits: Tensor, target: Tensor) -> Tensor:
    # (N, 1) outputs against (N,) targets (or the reverse): compare element by element.
    if logits.shape != target.shape and logits.numel() == target.numel():
        return logits.reshape(target.shape)
    return logits


def _per_sample(values: Tensor) -> Tensor:
    # Mean over the outputs of each sample, so that the sum over the batch / n is the mean loss.
    return values if values.dim() <= 1 else values.reshape(values.shape[0], -1).mean(dim=1)


@dataclass(frozen=True)
class Task:
    """A kind of learning problem: how logits become a loss, probabilities and metrics.

    Args:
        name: ``multiclass``, ``binary``, ``multilabel`` or ``regression``.
        loss_name: ``cross_entropy``, ``bce`` (binary cross-entropy with logits), ``mse`` or
            ``huber``.
        metrics: names of the metrics :meth:`metric_sums` returns besides ``loss``.
        target_dtype: the dtype targets are converted to.
        delta: the Huber threshold δ (1.0, as in Keras and PyTorch).
        label_smoothing: ε of label smoothing (cross_entropy and bce only; 0 = off): the
            targets become (1 − ε)·one-hot + ε/K (K classes; K = 2 for bce), as Keras'
            ``label_smoothing`` and torch's ``cross_entropy(label_smoothing=ε)``. Every loss
            this task reports (training, validation, test) is the smoothed one, as in Keras.
    """

    name: str
    loss_name: str
    metrics: tuple[str, ...]
    target_dtype: torch.dtype
    delta: float = 1.0
    label_smoothing: float = 0.0

    def _soft(self, target: Tensor) -> Tensor:
        # bce: 0/1 targets pulled towards 1/2 by ε (Keras' binary label smoothing).
        ls = self.label_smoothing
        return target * (1.0 - ls) + 0.5 * ls if ls else target

    # -- losses -------------------------------------------------------------------------------
    def _elementwise(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(logits, target, reduction="none",
                                   label_smoothing=self.label_smoothing)
        logits = _align(logits, target)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(logits, self._soft(target),
                                                      reduction="none")
        if self.loss_name == "mse":
            return F.mse_loss(logits, target, reduction="none")
        return F.huber_loss(logits, target, reduction="none", delta=self.delta)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The mean loss over the batch (and over the outputs), a scalar tensor."""
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        logits = _align(logits, target)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(logits, self._soft(target))
        if self.loss_name == "mse":
            return F.mse_loss(logits, target)
        return F.huber_loss(logits, target, delta=self.delta)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Softmax (multiclass), sigmoid (binary, multilabel) or identity (regression)."""
        if self.name == "multiclass":
            return torch.softmax(logits, dim=-1)
        if self.name in ("binary", "multilabel"):
            return torch.sigmoid(logits)
        return logits

    # -- metrics ------------------------------------------------------------------------------
    def extra_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Sums over the batch of the metrics other than the loss (on device, no host sync)."""
        if self.name == "multiclass":
            return {"accuracy": (logits.argmax(dim=-1) == target).sum()}
        if self.name in ("binary", "multilabel"):
            logits = _align(logits, target)
            correct = ((logits > 0) == (target > 0.5)).to(logits.dtype)
            return {"accuracy": _per_sample(correct).sum()}
        logits = _align(logits, target)
        return {"mae": _per_sample((logits - target).abs()).sum()}

    def metric_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Per-batch *sums* of ``loss`` and the task's metrics; divide by n for means.

        The loss sum is the sum over samples of each sample's loss (averaged over its
        outputs), so ``sum / n`` equals :meth:`loss` on the whole set.
        """
        sums = {"loss": _per_sample(self._elementwise(logits, target)).sum()}
        sums.update(self.extra_sums(logits, target))
        return sums

    # -- targets ------------------------------------------------------------------------------
    def prepare_targets(self, y: object) -> Tensor:
        """``y`` as a tensor of :attr:`target_dtype` (class indices or floats)."""
        t = y if isinstance(y, Tensor) else torch.as_tensor(y)
        return t.to(self.target_dtype)

    def validate_targets(self, y: Tensor, n_outputs: int, field: str = "y") -> None:
        """Raise :class:`DataError` when ``y`` does not fit this task and ``n_outputs``.

        Checks: shape, finiteness, class indices in ``[0, n_outputs)`` (multiclass),
        0/1 values (binary, multilabel), and that the model has the right number of outputs.
        """
        if not isinstance(y, Tensor):
            y = torch.as_tensor(y)
        n = y.shape[0] if y.dim() else 0
        if self.name == "multiclass":
            if n_outputs < 2:
                raise DataError(
                    f"{field}: a multiclass model needs one output per class (at least 2); "
                    f"the model has {n_outputs} output(s). Use task='binary' for one output.")
            if y.dim() != 1:
                raise DataError(f"{field}: multiclass targets must be class indices of shape "
                                f"(N,); received shape {tuple(y.shape)}")
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                if y.is_floating_point() and not torch.isfinite(y).all():  # host sync: once
                    raise DataError(f"{field}: targets contain NaN or Inf")
                if not (y.is_floating_point() and bool((y == y.round()).all())):  # host sync
                    raise DataError(f"{field}: multiclass targets must be integer class "
                                    f"indices; received dtype {y.dtype}")
            if n:
                lo, hi = int(y.min()), int(y.max())  # host sync: once, before training
                if lo < 0 or hi >= n_outputs:
                    raise DataError(
                        f"{field}: labels must be in [0, {n_outputs - 1}] for a model with "
                        f"{n_outputs} outputs; received labels from {lo} to {hi}")
            return
        yf = y.to(torch.float32)
        if n and not bool(torch.isfinite(yf).all()):  # host sync: once, before training
            raise DataError(f"{field}: targets contain NaN or Inf")
        if self.name == "binary":
            if n_outputs != 1:
                raise DataError(f"{field}: a binary model needs exactly 1 output (a logit); "
                                f"the model has {n_outputs}")
            if not (y.dim() == 1 or (y.dim() == 2 and y.shape[1] == 1)):
                raise DataError(f"{field}: binary targets must have shape (N,) or (N, 1); "
                                f"received {tuple(y.shape)}")
        elif self.name == "multilabel":
            if y.dim() != 2 or y.shape[1] != n_outputs:
                raise DataError(f"{field}: multilabel targets must have shape (N, {n_outputs}) "
                                f"for a model with {n_outputs} outputs; received "
                                f"{tuple(y.shape)}")
        else:  # regression
            ok = (y.dim() == 1 and n_outputs == 1) or (
                y.dim() == 2 and y.shape[1] == n_outputs)
            if not ok:
                want = "(N,) or (N, 1)" if n_outputs == 1 else f"(N, {n_outputs})"
                raise DataError(f"{field}: regression targets must have shape {want} for a "
                                f"model with {n_outputs} output(s); received {tuple(y.shape)}")
        if self.name in ("binary", "multilabel") and n:
            if not bool(((yf == 0) | (yf == 1)).all()):  # host sync: once, before training
                raise DataError(f"{field}: {self.name} targets must be 0 or 1")


_LOSSES = {
    "multiclass": ("cross_entropy", ("cross_entropy",)),
    "binary": ("bce", ("bce",)),
    "multilabel": ("bce", ("bce",)),
    "regression": ("mse", ("mse", "huber")),
}
_LOSS_ALIASES = {"crossentropy": "cross_entropy", "categorical_crossentropy": "cross_entropy",
                 "sparse_categorical_crossentropy": "cross_entropy", "ce": "cross_entropy",
                 "binary_crossentropy": "bce", "bce_with_logits": "bce",
                 "mean_squared_error": "mse", "l2": "mse", "huber_loss": "huber"}


def _factory(name: str, metrics: tuple[str, ...], dtype: torch.dtype) -> Callable[..., Task]:
    def make(loss: str | None = None, label_smoothing: float = 0.0) -> Task:
        default, accepted = _LOSSES[name]
        key = default if loss is None else str(loss).strip().lower().replace("-", "_")
        key = _LOSS_ALIASES.get(key, key)
        if key not in accepted:
            raise ConfigError("model.loss", loss, list(accepted))
        ls = check_label_smoothing(label_smoothing, key)
        return Task(name, key, metrics, dtype, label_smoothing=ls)

    return make


TASKS.register("multiclass", _factory("multiclass", ("accuracy",), torch.long),
               description="one label out of K classes: softmax + cross-entropy",
               aliases=("classification", "multi_class"), n_outputs="n_classes")
TASKS.register("binary", _factory("binary", ("accuracy",), torch.float32),
               description="yes/no: one logit, sigmoid + binary cross-entropy", n_outputs=1)
TASKS.register("multilabel", _factory("multilabel", ("accuracy",), torch.float32),
               description="several independent yes/no outputs: sigmoid + BCE per output",
               aliases=("multi_label",), n_outputs="n_labels")
TASKS.register("regression", _factory("regression", ("mae",), torch.float32),
               description="real values: identity output, MSE (or Huber) loss",
               n_outputs="n_targets")


def check_label_smoothing(value: float, loss: str) -> float:
    """``value`` when it is a valid ε for ``loss`` (a number in [0, 1); > 0 only with
    cross_entropy or bce), else one :class:`ConfigError` naming ``train.label_smoothing``."""
    ls = check_field("train.label_smoothing", value)
    if ls and loss not in ("cross_entropy", "bce"):
        raise ConfigError("train.label_smoothing", value,
                          f"0 with the {loss} loss (label smoothing is for the classification "
                          "losses cross_entropy and bce)")
    return ls


def get_task(name: str = "multiclass", loss: str | None = None,
             label_smoothing: float = 0.0) -> Task:
    """The :class:`Task` called ``name`` with its default loss or ``loss``.

    Args:
        name: one of ``TASKS.names()`` (or a Task: returned as it is, or with
            ``label_smoothing`` when that is not 0).
        loss: ``None`` (the task's default) or an accepted loss: ``cross_entropy``
            (multiclass), ``bce`` (binary, multilabel), ``mse`` / ``huber`` (regression).
        label_smoothing: ε in [0, 1) for cross_entropy or bce (see :class:`Task`).

    Raises:
        ConfigError: unknown task (field ``model.task``), loss (field ``model.loss``), or a
            label smoothing out of range or with a regression loss (``train.label_smoothing``).

    Example:
        >>> get_task("regression", loss="huber").loss_name
        'huber'
        >>> get_task("multiclass", label_smoothing=0.1).label_smoothing
        0.1
    """
    if isinstance(name, Task):
        if not label_smoothing:
            return name
        return replace(name, label_smoothing=check_label_smoothing(label_smoothing,
                                                                   name.loss_name))
    return TASKS.get(name, field="model.task").obj(loss, label_smoothing)


@dataclass(frozen=True)
class _LossFnTask(Task):
    """A task whose loss is a user's callable: targets as given, the loss as the only metric."""

    fn: Callable[[Tensor, Tensor], Tensor] | None = None

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.fn(logits, target)

    def probabilities(self, logits: Tensor) -> Tensor:
        return logits

    def extra_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        return {}

    def metric_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        return {"loss": self.fn(logits, target) * target.shape[0]}

    def prepare_targets(self, y: object) -> Tensor:
        return y if isinstance(y, Tensor) else torch.as_tensor(y)

    def validate_targets(self, y: Tensor, n_outputs: int, field: str = "y") -> None:
        return None  # the callable knows what it accepts


def task_with_loss(fn: Callable[[Tensor, Tensor], Tensor]) -> Task:
    """A task whose loss is ``fn(outputs, targets) -> scalar`` (e.g. ``F.mse_loss``).

    Targets are used as given (no conversion, no checks); the loss is the only metric.

    Example:
        >>> task_with_loss(F.mse_loss).loss(torch.ones(2, 1), torch.zeros(2, 1))
        tensor(1.)
    """
    if not callable(fn):
        raise ConfigError("model.loss", fn, "a callable loss(outputs, targets)")
    return _LossFnTask("custom", getattr(fn, "__name__", "custom"), (), torch.float32, fn=fn)
