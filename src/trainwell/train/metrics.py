"""Metrics by name (``metrics=["f1", "auc", "top_5"]``), computed on the device by torchmetrics.

Each name becomes one ``torchmetrics`` metric fitted to the task: macro-averaged over the
classes for multiclass, over the labels for multilabel. The trainer updates them with every
batch's logits (no host sync) and reads them once per epoch, with the loss. The task's own
metric (``accuracy``, or ``mae`` for regression) is always there and needs no name.

============  ===================================  ==========================================
name          tasks                                what
============  ===================================  ==========================================
accuracy      all classification                   fraction of correct predictions
top_k, top_N  multiclass                           target among the N (default 5) top logits
precision     classification                       macro precision
recall        classification                       macro recall
f1            classification                       macro F1 score
auc           classification                       area under the ROC curve (macro)
mae, mse      regression                           mean absolute / squared error
rmse          regression                           root mean squared error
r2            regression                           coefficient of determination
============  ===================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch

from trainwell.errors import ConfigError

__all__ = ["METRIC_NAMES", "check_metrics", "check_metric_names", "MetricSet",
           "confusion_matrix", "per_class_table"]

_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "auc")
_REGRESSION = ("mae", "mse", "rmse", "r2")
#: The names ``metrics=[...]`` accepts (``top_N`` for any N ≥ 1 as well).
METRIC_NAMES = (*_CLASSIFICATION, "top_k", *_REGRESSION)
_TOP = re.compile(r"top_(\d+)$")


def _accepted(task: str) -> str:
    if task == "regression":
        return ", ".join(_REGRESSION)
    top = ", top_k (top_5), top_N" if task == "multiclass" else ""
    return ", ".join(_CLASSIFICATION) + top


def check_metric_names(names: list[str], field: str = "train.metrics") -> list[str]:
    """Names any task may ask for (a recipe's check, before the task is known); no repeats."""
    for name in names:
        if not (name in METRIC_NAMES or (isinstance(name, str) and _TOP.match(name)
                                         and int(_TOP.match(name)[1]) >= 1)):
            raise ConfigError(field, name, ", ".join(METRIC_NAMES) + ", top_N")
    return list(dict.fromkeys(names))


def check_metrics(names: Any, task: str, field: str = "train.metrics") -> tuple[str, ...]:
    """The metric names, checked against the task; the task's built-in one is left out."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable):
        raise ConfigError(field, names, f"a list of metric names: {_accepted(task)}")
    builtin = "mae" if task == "regression" else "accuracy"
    out: list[str] = []
    for name in names:
        ok = isinstance(name, str) and (
            (name in _REGRESSION) if task == "regression" else
            (name in _CLASSIFICATION or (task == "multiclass" and (
                name == "top_k" or (_TOP.match(name) and int(_TOP.match(name)[1]) >= 1)))))
        if not ok:
            raise ConfigError(field, name, f"metric names for a {task} task: {_accepted(task)}")
        if name != builtin and name not in out:
            out.append(name)
    try:
        import torchmetrics  # noqa: F401
    except ImportError as e:
        if out:
            raise ConfigError(field, out, "metrics beyond the task's own need the torchmetrics "
                              "package: pip install torchmetrics") from e
    return tuple(out)


def _make(name: str, task: str, n_outputs: int) -> Any:
    from torchmetrics import classification as c
    from torchmetrics import regression as r

    if task == "regression":
        return {"mae": lambda: r.MeanAbsoluteError(), "mse": lambda: r.MeanSquaredError(),
                "rmse": lambda: r.MeanSquaredError(squared=False),
                "r2": lambda: r.R2Score(multioutput="uniform_average")}[name]()
    if name == "top_k" or _TOP.match(name):
        k = 5 if name == "top_k" else int(_TOP.match(name)[1])
        return c.MulticlassAccuracy(num_classes=n_outputs, top_k=min(k, n_outputs),
                                    average="micro")
    kind = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
            "f1": "F1Score", "auc": "AUROC"}[name]
    if task == "multiclass":
        kw: dict[str, Any] = {"num_classes": n_outputs}
        if name != "accuracy":
            kw["average"] = "macro"
        return getattr(c, f"Multiclass{kind}")(**kw)
    if task == "multilabel":
        return getattr(c, f"Multilabel{kind}")(num_labels=n_outputs, average="macro")
    return getattr(c, f"Binary{kind}")()


class MetricSet:
    """The named metrics of one task, updated per batch on the device, read once per epoch.

    Args:
        names: checked names (see :func:`check_metrics`).
        task: the task's name.
        n_outputs: the model's outputs (the number of classes or labels).
        device: where the logits live.
    """

    def __init__(self, names: Iterable[str], task: str, n_outputs: int,
                 device: torch.device | str = "cpu", unpack: Any = None):
        self.task = task
        self.unpack = unpack  # weighted targets carry a weight column: split it off
        self.metrics = {n: _make(n, task, n_outputs).to(device) for n in names}
        self.updated = False

    def __bool__(self) -> bool:
        return bool(self.metrics)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch (no host sync)."""
        if self.unpack is not None:
            target = self.unpack(target)[0]
        logits = logits.detach().float()
        if self.task == "multiclass":
            target = target.long()
        elif self.task in ("binary", "multilabel"):
            logits = logits.reshape(target.shape) if logits.numel() == target.numel() else logits
            target = target.long()
        else:
            logits = logits.reshape(target.shape) if logits.numel() == target.numel() else logits
            target = target.to(logits.dtype)
        for m in self.metrics.values():
            m.update(logits, target)
        self.updated = True

    def compute(self, prefix: str = "") -> dict[str, float]:
        """Each metric's value over the batches since the last reset; then reset."""
        if not self.metrics or not self.updated:
            return {}
        values = torch.stack([m.compute().float().reshape(()) for m in self.metrics.values()])
        out = values.tolist()  # host sync: once per epoch / evaluation
        self.reset()
        return {f"{prefix}{n}": float(v) for n, v in zip(self.metrics, out, strict=True)}

    def reset(self) -> None:
        for m in self.metrics.values():
            m.reset()
        self.updated = False


def confusion_matrix(model: torch.nn.Module, x: torch.Tensor, y: Any, *, task: str,
                     n_classes: int, batch_size: int = 1024) -> torch.Tensor:
    """``cm[true, predicted]`` counts of ``model`` on ``(x, y)`` in eval mode (on the CPU).

    Multiclass: the arg-max class; binary: logit > 0 (probability > 0.5).
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    y = torch.as_tensor(y).reshape(-1).long().to(device)
    cm = torch.zeros(n_classes * n_classes, dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(y), batch_size):
            out = model(torch.as_tensor(x[lo:lo + batch_size]).to(device, dtype))
            pred = out.argmax(dim=1) if task == "multiclass" else (out.reshape(-1) > 0).long()
            cm += torch.bincount(y[lo:lo + batch_size] * n_classes + pred,
                                 minlength=n_classes * n_classes)
    model.train(was_training)
    return cm.reshape(n_classes, n_classes).cpu()  # host sync: once, for the report


def per_class_table(cm: torch.Tensor, class_names: Any = None) -> list[list[Any]]:
    """Rows ``class, precision, recall, F1, support`` (+ the macro average) of a confusion matrix.

    precision_c = cm[c, c] / Σ_t cm[t, c], recall_c = cm[c, c] / Σ_p cm[c, p],
    F1_c = 2·P·R / (P + R); a class never predicted (or absent) scores 0.
    """
    cm = cm.double()
    tp = cm.diag()
    predicted, actual = cm.sum(0), cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), 0.0)
    f1 = torch.where(precision + recall > 0,
                     2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
    names = list(class_names) if class_names is not None and len(class_names) == len(cm) \
        else [str(i) for i in range(len(cm))]
    rows: list[list[Any]] = [["class", "precision", "recall", "F1", "support"]]
    for i, name in enumerate(names):
        rows.append([str(name), float(precision[i]), float(recall[i]), float(f1[i]),
                     int(actual[i])])
    rows.append(["macro average", float(precision.mean()), float(recall.mean()),
                 float(f1.mean()), int(actual.sum())])
    return rows
