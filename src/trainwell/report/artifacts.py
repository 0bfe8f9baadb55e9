"""What a finished fit writes: recipe.toml, model/, summary.json (metrics, times, versions,
parameters, dataset), and the plots and report.html drawn from them."""

from __future__ import annotations

import math
import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainwell.config import Recipe, save_recipe
from trainwell.report.per_class import add_per_class
from trainwell.report.rundir import read_summary, send_learning_curves, write_report, write_summary
from trainwell.train.evaluate import evaluate_model

__all__ = ["save_run_artifacts"]


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from trainwell import __version__

    return {"trainwell": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def _metrics_block(model: Any, splits: Any, task: str, device: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}", None), getattr(splits, f"y_{part}", None)
        if x is None or y is None or len(x) == 0:
            continue
        for k, v in evaluate_model(model, x, y, task=task, device=device).items():
            out[f"{part}_{k}"] = v
    return out


def _best_val_accuracy(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch with the highest validation accuracy (classification with a validation set)."""
    rows = [r for r in history if isinstance(r.get("val_accuracy"), (int, float))
            and math.isfinite(r["val_accuracy"])]
    if not rows:
        return None
    best = max(rows, key=lambda r: r["val_accuracy"])   # the first epoch on ties
    return {"epoch": best.get("epoch"), "val_accuracy": best["val_accuracy"]}


def _best_epoch(history: list[dict[str, Any]], monitor: str) -> dict[str, Any] | None:
    """The epoch row with the best ``monitor`` value (``train.monitor``), plus ``monitor``."""
    key = monitor
    if history and key not in history[0] and key.startswith("val_") and key[4:] in history[0]:
        key = key[4:]
    rows = [r for r in history if isinstance(r.get(key), (int, float)) and
            math.isfinite(r[key])]
    if not rows:
        return None
    maximize = any(s in key for s in ("accuracy", "acc", "auc", "f1"))
    best = (max if maximize else min)(rows, key=lambda r: r[key])
    return {"monitor": key, **{k: v for k, v in best.items()}}


def _lr_curve(trainer: Any, points: int = 1500) -> dict[str, list] | None:
    """The learning rate of every step (at most ``points``, evenly spaced) for the lr plot.

    Only for schedules that change the rate within an epoch (their rate is a function of
    the step); constant and performance scheduling change it at epoch ends, which the
    history's per-epoch ``lr`` already shows exactly.
    """
    schedule = getattr(trainer, "schedule", None)
    steps, per_epoch = int(getattr(trainer, "step", 0) or 0), getattr(trainer, "steps_per_epoch",
                                                                         0)
    if schedule is None or not steps or not per_epoch or getattr(schedule, "name", "") in (
            "constant", "performance"):
        return None
    stride = max(1, steps // points)
    xs = list(range(0, steps, stride)) + ([steps - 1] if (steps - 1) % stride else [])
    return {"epoch": [round((s + 1) / per_epoch, 5) for s in xs],
            "lr": [float(schedule.lr_at(s)) for s in xs]}


def _param_counts(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def _dataset_info(splits: Any) -> dict[str, Any]:
    def n(part: str) -> int:
        x = getattr(splits, f"x_{part}", None)
        return int(len(x)) if x is not None else 0

    return {"name": getattr(splits, "name", ""), "task": getattr(splits, "task", ""),
            "n_train": n("train"), "n_val": n("val"), "n_test": n("test"),
            "input_shape": list(getattr(splits, "input_shape", ()) or ()),
            "n_outputs": getattr(splits, "n_outputs", None),
            "class_names": getattr(splits, "class_names", None),
            "test_held_out": getattr(splits, "test_held_out", 0.0),
            **({"streamed": True} if getattr(splits, "streamed", False) else {}),
            **({"skipped": len(splits.skipped), "skipped_first": splits.skipped[:5]}
               if getattr(splits, "skipped", None) else {})}


def _status_message(status: str, divergence: dict[str, Any] | None) -> str:
    if status == "diverged" and divergence:
        return str(divergence.get("message") or
                   f"diverged at step {divergence.get('step')} in layer {divergence.get('layer')}")
    return {"completed": "trained every epoch",
            "stopped": "early stopping ended training",
            "interrupted": "continue with `trainwell fit --resume RUN`",
            "diverged": "training diverged (loss NaN/Inf); the last good weights were kept",
            }.get(status, status)


def _hardware(trainer: Any) -> dict[str, Any]:
    """Device name, precision and processes of a run (summary.json, the report)."""
    import torch

    from trainwell.train import distributed

    device = getattr(trainer, "device", None)
    name = "CPU"
    if isinstance(device, torch.device) and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif isinstance(device, torch.device) and device.type == "mps":
        name = "Apple MPS"
    precision = getattr(getattr(trainer, "precision", None), "name", "fp32")
    return {"device_name": name, "precision": precision,
            "processes": distributed.world_size()}


def save_run_artifacts(run_dir: str | os.PathLike, *, recipe: Recipe, trainer: Any, model: Any,
                       splits: Any, extra_summary: dict[str, Any] | None = None,
                       report: bool = True) -> dict[str, Any]:
    """Write ``recipe.toml``, ``model/``, ``summary.json``, ``plots/`` and ``report.html``.

    Evaluates ``model`` (eval mode) on the train, validation and test splits for the final
    metrics; the best epoch comes from the history (by ``train.monitor``). Sections already in
    ``summary.json`` (added by other features) are kept.

    Args:
        run_dir: the run directory.
        recipe: the recipe the run used.
        trainer: the :class:`~trainwell.train.Trainer` that trained ``model``.
        model: the trained network.
        splits: the data it was trained on.
        extra_summary: more keys for ``summary.json`` (e.g. ``{"transfer": {...}}``).
        report: also write the plots and ``report.html`` (default True).

    Returns:
        The summary dict that was written.
    """
    from trainwell.nn import save_model

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "recipe.toml").exists():
        save_recipe(recipe, run / "recipe.toml")
    task = getattr(getattr(trainer, "task", None), "name", None) or splits.task
    stats = splits.stats() if hasattr(splits, "stats") else {}
    save_model(model, run / "model", extra={"task": task, "class_names": splits.class_names,
                                            "data": stats, "recipe": recipe.name})
    history = trainer.history.to_list() if hasattr(trainer.history, "to_list") \
        else list(trainer.history)
    lr_curve = _lr_curve(trainer)
    if report:  # drawn (by the figure worker) while the final evaluation runs
        send_learning_curves(run, lr_curve)
    times = [float(r["time"]) for r in history if isinstance(r.get("time"), (int, float))]
    status = getattr(trainer, "status", "completed")
    if status in ("running", "new"):
        status = "completed"
    divergence = getattr(trainer, "divergence", None)  # NanGuard names the step and layer
    previous = read_summary(run)
    best_monitored = _best_epoch(history, recipe.train.monitor)
    summary: dict[str, Any] = {
        "name": recipe.name,
        "description": recipe.description,
        "run_dir": str(run),
        "status": status,
        "message": _status_message(status, divergence),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # best_monitored: the epoch with the best train.monitor (val_loss by default), the one
        # early stopping restores; "best" is the same row under its old name.
        "metrics": {"final": _metrics_block(model, splits, task, getattr(trainer, "device", None)),
                    "last_epoch": history[-1] if history else None,
                    "best_monitored": best_monitored,
                    "best": best_monitored,
                    "best_val_accuracy": _best_val_accuracy(history)},
        "epochs_run": len(history),
        "steps": getattr(trainer, "step", None),
        "epoch_times": times,
        "median_epoch_time": statistics.median(times) if times else None,
        "total_time": sum(times),
        "seed": recipe.train.seed,
        "device": str(getattr(trainer, "device", "cpu")),
        **_hardware(trainer),
        "versions": _versions(),
        "parameters": _param_counts(model),
        "dataset": _dataset_info(splits),
        "divergence": divergence,
        "sections": previous.get("sections", []),
    }
    summary.update(extra_summary or {})
    add_per_class(summary, run, model, splits, task, draw=report)
    if lr_curve:
        summary["lr_curve"] = lr_curve
    write_summary(run, summary)
    if report:
        write_report(run, curves=False)
        summary = read_summary(run)  # with the fit diagnosis the report added
    return summary
