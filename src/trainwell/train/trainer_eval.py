"""The Trainer's evaluation and prediction: eval mode, float32, one host sync per call."""

from __future__ import annotations

from typing import Any

import torch

from trainwell.train.device import _is_streamed

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """``evaluate``, ``predict_proba`` and ``predict`` of :class:`~trainwell.train.Trainer`."""

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
                  ) -> dict[str, float]:
        # float32: validation and the reported metrics never run under autocast
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        named = self._metric_sets[1] if self._metric_sets else None
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                xb = x[lo:lo + batch_size]
                if _is_streamed(x):  # read from disk: move (and cast) each chunk
                    xb = xb.to(self.device, dtype=next(
                        (p.dtype for p in self.model.parameters() if p.is_floating_point()),
                        torch.float32))
                logits, yb = self.model(xb), y[lo:lo + batch_size]
                part = self.task.metric_sums(logits, yb)
                for k, v in part.items():
                    sums[k] = sums[k] + v if k in sums else v.to(torch.float64)
                if named is not None:
                    named.update(logits, yb)
        self.model.train(was_training)
        n = x.shape[0]
        values = torch.stack(list(sums.values())).tolist()  # host sync: once per evaluation
        out = {k: v / n for k, v in zip(sums, values, strict=True)}
        if named is not None:
            out.update(named.compute())
        return out

    def evaluate(self, x: Any, y: Any, *, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss and metrics on ``(x, y)`` in eval mode (dropout off, BN running stats)."""
        x, y, n_outputs = self._prepare(x, y, "evaluate")
        self._ensure_metric_sets(n_outputs)
        return self._evaluate(x, y, batch_size)

    def predict_proba(self, x: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Probabilities (softmax / sigmoid; raw outputs for regression) on the CPU."""
        x = self._as_tensor(x, "predict.x")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        x = x.to(self.device, dtype=dtype)
        was_training = self.model.training
        self.model.eval()
        outs = []
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                outs.append(self.task.probabilities(self.model(x[lo:lo + batch_size])))
        self.model.train(was_training)
        return torch.cat(outs).cpu()  # host sync: the result goes back to the caller

    def predict(self, x: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Class indices (multiclass), 0/1 (binary, multilabel) or values (regression)."""
        p = self.predict_proba(x, batch_size=batch_size)
        if self.task.name == "multiclass":
            return p.argmax(dim=-1)
        if self.task.name in ("binary", "multilabel"):
            return (p > 0.5).long()
        return p
