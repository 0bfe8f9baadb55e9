"""The Trainer's inputs: every array checked (shapes, dtypes, NaN, the model's output) before
the first step, then moved to the device once."""

from __future__ import annotations

from typing import Any

import torch

from trainwell.errors import ConfigError, DataError
from trainwell.tasks import TASKS
from trainwell.train.device import _is_streamed, _unwrap

__all__ = ["InputsMixin"]


class InputsMixin:
    """Input checks and placement of :class:`~trainwell.train.Trainer`."""

    def _as_tensor(self, x: Any, field: str) -> torch.Tensor:
        try:
            t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        except Exception as e:
            raise DataError(f"{field}: cannot be turned into a tensor ({e})") from e
        return t

    def _prepare(self, x: Any, y: Any, field: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Validate ``x``/``y`` (and the model's output) before any step; move them to device."""
        if _is_streamed(x):
            return self._prepare_streamed(x, y, field)
        x = self._as_tensor(x, f"{field}.x")
        y = self._as_tensor(y, f"{field}.y")
        if x.dim() == 0 or y.dim() == 0:
            raise DataError(f"{field}: x and y need a sample dimension; received shapes "
                            f"{tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{field}: x has {x.shape[0]} samples but y has {y.shape[0]}")
        if x.shape[0] == 0:
            raise DataError(f"{field}: no samples")
        if x.is_complex() or x.dtype == torch.bool:
            raise DataError(f"{field}.x: features must be real numbers; received {x.dtype}")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        x_in, y_in = x, y
        x = x.to(self.device, dtype=dtype)  # once per fit: batches are then slices of it
        n_outputs = self._dry_run(x, field)
        self.task.validate_targets(y, n_outputs, f"{field}.y")
        try:
            from trainwell.data import validate_arrays
        except ImportError:  # the data layer is optional for the trainer
            validate_arrays = None
        if validate_arrays is not None and self.task.name in TASKS:  # + features NaN/Inf
            validate_arrays(x_in, y_in, task=self.task.name, n_outputs=n_outputs,
                            input_shape=tuple(x.shape[1:]), where=f"{field}.x")
        elif not bool(torch.isfinite(x).all()):  # host sync: once per fit, before training
            raise DataError(f"{field}.x: contains NaN or Inf; clean or impute the features")
        y = self.task.prepare_targets(y).to(self.device)
        return x, y, n_outputs

    def _prepare_streamed(self, x: Any, y: Any, field: str) -> tuple[Any, torch.Tensor, int]:
        """Streamed features stay on disk (the data layer checked them in its one pass);
        targets move to the device; the model is tried on the first two samples."""
        y = self._as_tensor(y, f"{field}.y")
        if len(x) != y.shape[0]:
            raise DataError(f"{field}: x has {len(x)} samples but y has {y.shape[0]}")
        if len(x) == 0:
            raise DataError(f"{field}: no samples")
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()),
                     torch.float32)
        n_outputs = self._dry_run(x[:2].to(self.device, dtype=dtype), field)
        self.task.validate_targets(y, n_outputs, f"{field}.y")
        return x, self.task.prepare_targets(y).to(self.device), n_outputs

    def _dry_run(self, x: torch.Tensor, field: str) -> int:
        """One forward pass on 2 samples in eval mode (no RNG use, no BN update)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                out = self.model(x[:2])
        except Exception as e:
            expects = ""
            cfg = getattr(_unwrap(self.model), "trainwell_config", None)
            if isinstance(cfg, dict) and "input_shape" in cfg:
                expects = f"; the model expects inputs of shape {tuple(cfg['input_shape'])}"
            raise DataError(f"{field}.x: samples of shape {tuple(x.shape[1:])} do not fit the "
                            f"model{expects} ({type(e).__name__}: {e})") from e
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor):
            raise ConfigError("model", type(out).__name__, "a model returning one tensor of logits")
        if out.dim() == 1:
            return 1
        if out.dim() != 2:
            raise DataError(f"{field}: the model outputs shape {tuple(out.shape)} per batch; "
                            f"trainwell expects (batch, n_outputs) logits")
        return int(out.shape[1])
