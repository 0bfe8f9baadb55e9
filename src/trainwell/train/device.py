"""Where training runs: ``resolve_device`` and the small helpers the Trainer's parts share."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import trainwell.train.distributed as distributed
from trainwell.errors import ConfigError

__all__ = ["resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _is_streamed(x: Any) -> bool:
    """Features read from disk per batch (trainwell.data.stream.StreamedPart)."""
    return type(x).__name__ == "StreamedPart" and hasattr(x, "read")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, then Apple's MPS, else CPU; anything else is passed
    to torch.device. A torchrun worker on CUDA gets ``cuda:LOCAL_RANK``."""
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else
                           "mps" if _mps_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ConfigError("train.device", device, "auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", device, "auto or cpu (CUDA is not available here)")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError("train.device", device, "auto or cpu (MPS is not available here)")
    if dev.type == "cuda" and dev.index is None and distributed.launched_by_torchrun():
        dev = torch.device("cuda", distributed.local_rank())  # one GPU per worker
    return dev


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)
