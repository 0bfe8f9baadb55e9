"""Mixed precision: ``train.precision = "fp32" | "bf16" | "fp16"``.

- ``fp32``: everything in float32 (the default).
- ``bf16``: the forward pass and the loss run under ``torch.autocast`` in bfloat16 (CUDA, and
  the CPU where torch supports it); the weights, gradients and optimizer state stay float32.
  bfloat16 has float32's range, so no loss scaling is needed.
- ``fp16``: autocast in float16 plus a gradient scaler (``torch.amp.GradScaler``): the loss is
  multiplied by a large factor before ``backward`` so small gradients do not underflow, the
  gradients are unscaled before clipping and the update, and a step whose gradients overflowed
  (inf/NaN) is skipped while the factor halves. The scaler's state is part of the checkpoint, so
  a resumed run continues exactly. fp16 needs a GPU (CUDA or MPS): on a CPU trainwell refuses it
  (as PyTorch Lightning does) — the CPU has no float16 arithmetic, so fp16 would be slower than
  fp32 there, and silently switching to bf16 would change the numbers a user asked for; use
  ``bf16`` on a CPU.

Validation and the reported metrics are computed in float32 (outside autocast).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from trainwell.errors import ConfigError

__all__ = ["PRECISIONS", "Precision", "check_precision"]

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: Any, device: torch.device | None = None) -> str:
    """``name`` if it is a precision this device can train in.

    Raises:
        ConfigError: naming ``train.precision`` (unknown name, fp16 on a CPU).
    """
    if name not in PRECISIONS:
        raise ConfigError("train.precision", name, list(PRECISIONS))
    if name == "fp16" and device is not None and device.type == "cpu":
        raise ConfigError("train.precision", name,
                          "fp32 or bf16 on a CPU (fp16 needs a GPU: the CPU has no float16 "
                          "arithmetic, fp16 would be slower than fp32 there)")
    return name


class Precision:
    """How the training step runs its forward pass and scales its loss.

    Args:
        name: ``fp32``, ``bf16`` or ``fp16``.
        device: the training device (autocast's device type).
        allow_cpu_fp16: let fp16 run on a CPU (tests of the scaler's mechanics only).

    Attributes:
        scaler: the ``torch.amp.GradScaler`` (fp16), else None.
        skipped_steps: fp16 steps the scaler skipped (gradients overflowed).

    Example:
        >>> p = Precision("bf16", torch.device("cpu"))
        >>> with p.autocast():
        ...     y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
        >>> y.dtype
        torch.bfloat16
    """

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu", *,
                 allow_cpu_fp16: bool = False):
        self.device = torch.device(device)
        self.name = check_precision(name, None if allow_cpu_fp16 else self.device)
        self.dtype = _DTYPES.get(self.name)
        self.scaler = (torch.amp.GradScaler(self.device.type) if self.name == "fp16"
                       else None)
        self.skipped_steps = 0

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's context: autocast to bf16/fp16, or nothing for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call ``backward`` on (× the scaler's factor with fp16)."""
        return loss if self.scaler is None else self.scaler.scale(loss)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the factor (fp16), so events and clipping see true values."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer's update; with fp16 skipped when the gradients overflowed."""
        if self.scaler is None:
            optimizer.step()
            return
        before = self.scaler.get_scale()  # host sync: fp16 only, the scaler reads it anyway
        self.scaler.step(optimizer)
        self.scaler.update()
        if self.scaler.get_scale() < before:
            self.skipped_steps += 1

    def gradients_may_overflow(self) -> bool:
        """True with fp16: non-finite gradients mean a skipped step, not a divergence."""
        return self.scaler is not None

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the precision, the scaler's state (fp16) and the skipped steps."""
        state: dict[str, Any] = {"name": self.name, "skipped_steps": self.skipped_steps}
        if self.scaler is not None:
            state["scaler"] = {k: float(v) if isinstance(v, float) else v
                               for k, v in self.scaler.state_dict().items()}
        return state

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
