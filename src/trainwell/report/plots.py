"""Learning-curve plots and the over/underfitting diagnosis of a run's history.

The plots use matplotlib's object API with the Agg canvas (no pyplot global state, no
display needed), so they work in scripts, CI and notebooks alike.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainwell.figures import new_figure, save_figure

__all__ = ["plot_learning_curves", "fit_diagnosis", "new_figure", "save_figure"]

# Thresholds of the fit diagnosis (documented in fit_diagnosis).
GAP_ACCURACY = 0.05      # train − val accuracy above this: the network fits noise
OVERFIT_RISE = 0.10      # val loss this far (relative) above its minimum while train loss falls
STILL_IMPROVING = 0.01   # val loss fell this much (relative) over the last epochs
PLATEAU = 0.01           # train loss changed less than this (relative) over the last epochs


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for i, row in enumerate(history):
        v = row.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(int(row.get("epoch", i + 1)))
            ys.append(float(v))
    return xs, ys


def plot_learning_curves(history: Sequence[dict[str, Any]], plots_dir: str | os.PathLike,
                         lr_curve: dict[str, Sequence[float]] | None = None) -> list[Path]:
    """Write ``loss.png`` (train vs validation), ``<metric>.png`` and ``lr.png``.

    Args:
        history: per-epoch dicts (``epoch``, ``loss``, ``val_loss``, ``accuracy``, ``lr``...).
        plots_dir: where the PNG files go (created if needed).
        lr_curve: ``{"epoch": [...], "lr": [...]}``, the rate of every step (fractional
            epochs); drawn instead of the per-epoch points when given.

    Returns:
        The paths written (nothing for an empty history).
    """
    from matplotlib.ticker import MaxNLocator

    out: list[Path] = []
    if not history:
        return out
    plots = Path(plots_dir)
    keys = {k for row in history for k in row}
    metrics = ["loss"] + [m for m in ("accuracy", "mae") if m in keys or f"val_{m}" in keys]
    for metric in metrics:
        fig, ax = new_figure()
        drawn = False
        for key, label, style in ((metric, "train", "-"), (f"val_{metric}", "validation", "--")):
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, style, marker="o", markersize=3, label=label)
                drawn = True
        if not drawn:
            continue
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: training vs validation")
        ax.grid(True, alpha=0.3)
        ax.legend()
        out.append(save_figure(fig, plots / f"{metric}.png"))
    xs, ys = _series(history, "lr")
    per_step = bool(lr_curve and lr_curve.get("lr"))
    if per_step:
        xs, ys = list(lr_curve["epoch"]), [float(v) for v in lr_curve["lr"]]
    if xs:
        fig, ax = new_figure(6.4, 3.2)
        ax.plot(xs, ys, **({"linewidth": 1.5} if per_step else {"marker": "o", "markersize": 3}))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate" if per_step else "learning rate (end of epoch)")
        if min(ys) > 0 and max(ys) / min(ys) > 50:
            ax.set_yscale("log")
        ax.set_title("learning rate per step" if per_step else "learning rate per epoch")
        ax.grid(True, alpha=0.3)
        out.append(save_figure(fig, plots / "lr.png"))
    return out


def _rel(a: float, b: float) -> float:
    return (a - b) / max(abs(b), 1e-12)


def _last_epochs(k: int) -> str:
    """The span a verdict looked at, in words: "the last epoch" or "the last 3 epochs"."""
    return "the last epoch" if k == 1 else f"the last {k} epochs"


def fit_diagnosis(history: Sequence[dict[str, Any]],
                  final: dict[str, float] | None = None) -> dict[str, str] | None:
    """Compare training and validation curves: over-, underfitting or still improving.

    Rules (first match wins), with ``final`` the eval-mode metrics of the final model when
    known (training curves under dropout are pessimistic, so ``final`` is preferred):

    - **overfitting**: the validation loss ended ``OVERFIT_RISE`` (10 %) above its minimum while
      the training loss kept falling → regularization (dropout, ℓ2, max-norm), early
      stopping, more data.
    - **generalization gap**: train − validation accuracy > ``GAP_ACCURACY`` (5 points) while
      the validation loss did not rise → regularization or more data may close it.
    - **still improving**: the validation loss fell more than 1 % over the last three epochs
      → more epochs (or a higher learning rate).
    - **underfitting**: the training loss changed less than 1 % over the last three epochs and
      train ≈ validation → a bigger network, less regularization, another learning rate.
    - otherwise **good fit**.

    Returns:
        ``{"verdict": ..., "text": ...}``, or ``None`` without validation data.
    """
    _, val = _series(history, "val_loss")
    _, train = _series(history, "loss")
    if len(val) < 2 or len(train) < 2:
        return None
    final = final or {}
    tr_acc = final.get("train_accuracy")
    va_acc = final.get("val_accuracy")
    if tr_acc is None:
        _, a = _series(history, "accuracy")
        tr_acc = a[-1] if a else None
    if va_acc is None:
        _, a = _series(history, "val_accuracy")
        va_acc = a[-1] if a else None
    best_i = min(range(len(val)), key=val.__getitem__)
    rise = _rel(val[-1], val[best_i])
    train_falling = train[-1] < train[best_i]
    gap = (tr_acc - va_acc) if tr_acc is not None and va_acc is not None else None
    k = min(3, len(val) - 1)
    rising = rise > OVERFIT_RISE and train_falling
    wide = gap is not None and gap > GAP_ACCURACY
    gap_text = (f"training accuracy is {gap * 100:.1f} points above validation accuracy "
                f"({tr_acc:.3f} vs {va_acc:.3f})") if wide else ""
    if rising:
        parts = [f"the validation loss ended {rise:.0%} above its minimum (epoch {best_i + 1}) "
                 "while the training loss kept falling"] + ([gap_text] if wide else [])
        return {"verdict": "overfitting",
                "text": "Overfitting: " + " and ".join(parts) + ". Add regularization "
                        "(dropout, ℓ2, max-norm), keep early stopping, or get more data."}
    if wide:
        return {"verdict": "generalization_gap",
                "text": f"Generalization gap: {gap_text}, although the validation loss did not "
                        "rise. Regularization (dropout, ℓ2 / weight decay, max-norm) or more "
                        "data may close the gap."}
    fell = -_rel(val[-1], val[-1 - k])  # the fall as a fraction of where it started
    if fell > STILL_IMPROVING and best_i == len(val) - 1:
        return {"verdict": "still_improving",
                "text": f"Still improving: the validation loss fell {fell:.1%} "
                        f"over {_last_epochs(k)} and is lowest at the last one. Train for more "
                        "epochs."}
    if abs(_rel(train[-1], train[-1 - k])) < PLATEAU and (gap is None or gap < GAP_ACCURACY / 2):
        return {"verdict": "underfitting",
                "text": f"Plateau: the training loss changed less than {PLATEAU:.0%} over "
                        f"{_last_epochs(k)} and training ≈ validation. If the accuracy is not good "
                        "enough, use a bigger network (more units or layers), less "
                        "regularization, or tune the learning rate."}
    return {"verdict": "good_fit",
            "text": "Good fit: training and validation curves stay close and the validation "
                    "loss settled near its minimum."}


def plot_confusion_matrix(cm: Sequence[Sequence[int]], class_names: Sequence[str] | None,
                          path: str | os.PathLike, *, title: str = "confusion matrix") -> Path:
    """A heat map of ``cm[true][predicted]`` with the counts written in each cell."""
    import numpy as np

    m = np.asarray(cm, dtype=float)
    k = len(m)
    names = [str(n) for n in class_names] if class_names is not None and len(class_names) == k \
        else [str(i) for i in range(k)]
    size = min(3.0 + 0.45 * k, 9.0)
    fig, ax = new_figure(size + 1.0, size)
    # margins for the longest class name (8-pt ticks, x labels at 45°) instead of tight_layout,
    # which draws the whole figure once more to measure it
    longest = max((len(n) for n in names), default=1)
    left = (longest * 4.8 + 34) / ((size + 1.0) * 72)
    bottom = (longest * 3.4 + 40) / (size * 72)
    fig.subplots_adjust(left=min(left, 0.45), bottom=min(bottom, 0.45), right=0.98, top=0.93)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        top = m.max() if m.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if top and m[i, j] > top / 2 else "black")
    return save_figure(fig, path)
