"""Loss objects, class weights and sample weights for :class:`~trainwell.train.Trainer`.

* ``loss=nn.CrossEntropyLoss(weight=...)`` (any ``nn.Module`` or callable ``(logits, y)``):
  the trainer minimizes it instead of the task's default loss.
* ``class_weight`` / ``sample_weight`` in ``fit``: each sample's loss is multiplied by its
  weight and the batch loss is ``Σ wᵢ·lossᵢ / batch size`` (as in Keras). ``"balanced"``
  gives class c the weight ``n / (n_classes · n_c)`` (as in scikit-learn).

The weights travel with the targets, as one more column of the target tensor, so batches
and the training step stay exactly as they are; :class:`WeightedTask` splits them again.
Metrics other than the loss are not weighted.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.tasks import Task, _align, _per_sample, get_task

__all__ = ["resolve_task", "WeightedTask", "with_weights", "fit_weights",
           "check_class_weight_spec", "class_weight_arg"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class WeightedTask(Task):
    """A task with a custom loss object and/or per-sample weights packed into the targets."""

    loss_fn: Any = None
    loss_none: Any = None  # the same loss with reduction="none", when it has one
    weighted: bool = False
    y_tail: tuple[int, ...] = ()
    base_dtype: torch.dtype = torch.long

    # -- targets ------------------------------------------------------------------------------
    def unpack(self, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(targets, weights)``; weights are None for an unweighted task."""
        if not self.weighted:
            return y, None
        t = y[:, :-1].reshape(y.shape[0], *self.y_tail).to(self.base_dtype)
        return t, y[:, -1]

    def prepare_targets(self, y: object) -> Tensor:
        t = (y if isinstance(y, Tensor) else torch.as_tensor(y)).to(self.base_dtype)
        if not self.weighted:
            return t
        flat = t.reshape(t.shape[0], -1).to(torch.float32)
        return torch.cat([flat, torch.ones(t.shape[0], 1, device=t.device)], dim=1)

    # -- losses -------------------------------------------------------------------------------
    def _call(self, fn: Any, logits: Tensor, t: Tensor) -> Tensor:
        if self.name != "multiclass":
            logits = _align(logits, t)
        return fn(logits, t)

    def per_sample_loss(self, logits: Tensor, t: Tensor) -> Tensor:
        if self.loss_fn is None:
            return _per_sample(Task._elementwise(self, logits, t))
        if self.loss_none is None:
            raise ConfigError("loss", type(self.loss_fn).__name__,
                              "a loss with a 'reduction' attribute (an nn.Module loss) to weight "
                              "samples or classes")
        return _per_sample(self._call(self.loss_none, logits, t))

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        t, w = self.unpack(target)
        if w is not None:
            return (self.per_sample_loss(logits, t) * w.to(logits.dtype)).sum() / len(w)
        if self.loss_fn is None:
            return Task.loss(self, logits, t)
        return self._call(self.loss_fn, logits, t)

    # -- metrics ------------------------------------------------------------------------------
    def extra_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        return Task.extra_sums(self, logits, self.unpack(target)[0])

    def metric_sums(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        t, w = self.unpack(target)
        if self.loss_fn is not None and self.loss_none is None:  # mean × n: the same total
            total = self._call(self.loss_fn, logits, t) * t.shape[0]
        else:
            per = self.per_sample_loss(logits, t)
            total = (per * w.to(per.dtype)).sum() if w is not None else per.sum()
        sums = {"loss": total}
        sums.update(Task.extra_sums(self, logits, t))
        return sums


def _base_fields(task: Task) -> dict[str, Any]:
    return {f.name: getattr(task, f.name) for f in fields(Task)}


def resolve_task(task: str | Task, loss: Any) -> Task:
    """The Trainer's task: a name or Task, with ``loss`` a name, None or a loss object."""
    if isinstance(loss, str) or loss is None:
        return task if isinstance(task, Task) else get_task(task, loss)
    if not callable(loss):
        raise ConfigError("loss", type(loss).__name__,
                          "a loss name (cross_entropy, bce, mse, huber), an nn.Module loss or "
                          "a function (logits, y) -> scalar")
    base = task if isinstance(task, Task) else get_task(task)
    loss_none = None
    if isinstance(getattr(loss, "reduction", None), str):
        loss_none = copy.copy(loss)
        loss_none.reduction = "none"
    name = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__",
                                                                            "custom")
    return WeightedTask(**{**_base_fields(base), "loss_name": name}, loss_fn=loss,
                        loss_none=loss_none, base_dtype=base.target_dtype)


def with_weights(task: Task, weighted: bool, y_tail: tuple[int, ...] = ()) -> Task:
    """``task`` with (or without) a weight column in its targets."""
    if isinstance(task, WeightedTask):
        if task.weighted == weighted and task.y_tail == tuple(y_tail):
            return task
        if not weighted and task.loss_fn is None:
            return Task(**_base_fields(task))
        return replace(task, weighted=weighted, y_tail=tuple(y_tail))
    if not weighted:
        return task
    return WeightedTask(**_base_fields(task), weighted=True, y_tail=tuple(y_tail),
                        base_dtype=task.target_dtype)


def check_class_weight_spec(value: Any, field: str = "class_weight") -> Any:
    """A recipe's ``class_weight`` (before the data): none, balanced, a list or a table."""
    accepted = 'none, balanced, one weight >= 0 per class [1.0, 3.0] or {"1" = 3.0}'
    if isinstance(value, str):
        if value.strip().lower() not in ("none", "balanced"):
            raise ConfigError(field, value, accepted)
        return value.strip().lower()
    weights = list(value.values()) if isinstance(value, dict) else list(value)
    if (isinstance(value, dict) and not all(str(k).isdigit() for k in value)) or not all(
            isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in weights):
        raise ConfigError(field, value, accepted)
    return value


def class_weight_arg(spec: Any) -> Any:
    """A recipe's ``class_weight`` as ``Trainer.fit`` takes it (None for none)."""
    if spec == "none":
        return None
    return {int(k): v for k, v in spec.items()} if isinstance(spec, dict) else spec


def _class_weights(spec: Any, y: Tensor, task: str, n_outputs: int) -> Tensor:
    if task not in ("multiclass", "binary"):
        raise ConfigError("class_weight", spec, "class weights for multiclass or binary tasks "
                          "(use sample_weight for other tasks)")
    n_classes = n_outputs if task == "multiclass" else 2
    labels = y.reshape(-1).long().cpu()
    if isinstance(spec, str):
        if spec != "balanced":
            raise ConfigError("class_weight", spec, "'balanced', {class: weight} or one weight "
                                                    "per class")
        counts = torch.bincount(labels, minlength=n_classes).double()
        w = torch.where(counts > 0, len(labels) / (n_classes * counts.clamp(min=1)), 0.0)
        return w
    w = torch.ones(n_classes, dtype=torch.float64)
    if isinstance(spec, dict):
        for k, v in spec.items():
            ki = int(k) if isinstance(k, (int, str)) and str(k).isdigit() else -1
            if not 0 <= ki < n_classes:
                raise ConfigError("class_weight", k, f"class indices 0..{n_classes - 1}")
            w[ki] = float(v)
    else:
        try:
            w = torch.as_tensor(spec, dtype=torch.float64).reshape(-1)
        except Exception as e:
            raise ConfigError("class_weight", spec, "'balanced', {class: weight} or one weight "
                              "per class") from e
        if len(w) != n_classes:
            raise ConfigError("class_weight", list(w.tolist()),
                              f"one weight per class ({n_classes})")
    if not all(math.isfinite(v) and v >= 0 for v in w.tolist()):
        raise ConfigError("class_weight", w.tolist(), "finite weights >= 0")
    return w


def fit_weights(y: Tensor, *, task: str, n_outputs: int, class_weight: Any,
                sample_weight: Any) -> Tensor | None:
    """One weight per training sample (class weight × sample weight), or None for no weights."""
    if class_weight is None and sample_weight is None:
        return None
    n = y.shape[0]
    w = torch.ones(n, dtype=torch.float64)
    if class_weight is not None:
        w = w * _class_weights(class_weight, y, task, n_outputs)[y.reshape(n, -1)[:, 0]
                                                                  .long().cpu()]
    if sample_weight is not None:
        try:
            sw = torch.as_tensor(sample_weight, dtype=torch.float64).reshape(-1).cpu()
        except Exception as e:
            raise DataError(f"sample_weight: cannot be turned into numbers ({e})") from e
        if len(sw) != n:
            raise DataError(f"sample_weight: {len(sw)} weights for {n} training samples")
        if not bool(torch.isfinite(sw).all()) or bool((sw < 0).any()):
            raise DataError("sample_weight: weights must be finite and >= 0")
        w = w * sw
    return w
