"""TensorBoard logging of the probe's statistics (optional extra ``trainwell[tensorboard]``).

Scalars per layer (``act_mean``, ``act_std``, ``saturated``, ``dead``, ``grad_norm``,
``ratio_to_last``, ``update_ratio``) and histograms of the observed outputs and of the weight
gradients, at the training step of each sample. Open with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from trainwell.diagnose.stats import ProbeRecord
from trainwell.errors import ConfigError

__all__ = ["write_tensorboard", "write_history_tensorboard", "require_tensorboard", "SCALARS"]

SCALARS = ("act_mean", "act_std", "saturated", "dead", "grad_norm", "ratio_to_last",
           "update_ratio")


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:   # torch's writer needs the tensorboard package
        raise ConfigError("--tensorboard", "tensorboard logging",
                          'the tensorboard package: pip install "trainwell[tensorboard]"'
                          ) from exc
    return SummaryWriter


def require_tensorboard() -> None:
    """Fail early, before any training, when the tensorboard package is missing."""
    _summary_writer()


def write_history_tensorboard(rows: list[dict], log_dir: str | os.PathLike) -> Path:
    """Write every numeric column of the per-epoch history rows as ``epoch/<column>`` scalars.

    Example:
        >>> write_history_tensorboard(trainer.history.epochs, "runs/tb")   # doctest: +SKIP
    """
    writer_cls = _summary_writer()
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = writer_cls(log_dir=str(log_dir))
    try:
        for row in rows:
            epoch = int(row.get("epoch", 0))
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    writer.add_scalar(f"epoch/{key}", float(value), epoch)
    finally:
        writer.close()
    return log_dir


def write_tensorboard(record: ProbeRecord, log_dir: str | os.PathLike) -> Path:
    """Write every sample of ``record`` as TensorBoard scalars and histograms.

    Tags: ``<stat>/<layer>`` for the scalars, ``activations/<layer>`` and
    ``gradients/<layer>`` for the histograms.

    Args:
        record: the probe's samples.
        log_dir: the TensorBoard log directory (created).

    Raises:
        ConfigError: when the tensorboard package is not installed (with the pip command).

    Example:
        >>> write_tensorboard(probe.record(), "runs/tb")   # doctest: +SKIP
    """
    writer_cls = _summary_writer()
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    columns = {name: record.column(name) for name in SCALARS}
    writer = writer_cls(log_dir=str(log_dir))
    try:
        bins = record.hists.shape[-1]
        for s, step in enumerate(record.steps.tolist()):
            for i, layer in enumerate(record.layers):
                for name in SCALARS:
                    v = float(columns[name][s, i])
                    if math.isfinite(v):
                        writer.add_scalar(f"{name}/{layer}", v, step)
                for j, (tag, lo, hi, ssum, ssq) in enumerate((
                        ("activations", "act_min", "act_max", None, "act_sum_sq"),
                        ("gradients", "grad_min", "grad_max", "grad_sum", "grad_sum_sq"))):
                    counts = record.hists[s, i, j]
                    num = float(counts.sum())
                    a, b = float(record.column(lo)[s, i]), float(record.column(hi)[s, i])
                    if num <= 0 or not (math.isfinite(a) and math.isfinite(b)):
                        continue
                    total = float(record.column(ssum)[s, i]) if ssum else \
                        float(record.column("act_mean")[s, i]) * num
                    limits = np.linspace(a, b if b > a else a + 1e-12, bins + 1)[1:]
                    writer.add_histogram_raw(
                        f"{tag}/{layer}", min=a, max=b, num=num, sum=total,
                        sum_squares=float(record.column(ssq)[s, i]),
                        bucket_limits=limits.tolist(), bucket_counts=counts.tolist(),
                        global_step=step)
    finally:
        writer.close()
    return log_dir
