"""Schedules without training: the rate (and momentum) at every iteration, and their plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainwell.optim.schedules import Schedule, make_schedule  # noqa: F401 (doctest names)

__all__ = ["schedule_curve", "plot_schedule"]


def schedule_curve(schedule: Schedule, total_steps: int | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Evaluate a schedule at steps 0..total_steps-1 without training.

    Returns:
        (steps, lrs, momentums); momentums is None when the schedule does not cycle it.

    Example:
        >>> s = make_schedule("exponential", base_lr=1.0, steps_per_epoch=1, epochs=2,
        ...                   decay_steps=1)
        >>> schedule_curve(s)[1].tolist()
        [1.0, 0.1]
    """
    n = schedule.total_steps if total_steps is None else total_steps
    steps = np.arange(n)
    lrs = np.array([schedule.lr_at(int(t)) for t in steps], dtype=float)
    moms = [schedule.momentum_at(int(t)) for t in steps]
    momentums = None if n == 0 or moms[0] is None else np.array(moms, dtype=float)
    return steps, lrs, momentums


def plot_schedule(schedule: Schedule, path: str | Path, total_steps: int | None = None, *,
                  title: str | None = None) -> Path:
    """Write a PNG of the LR curve (and momentum, when cycled) over the iterations.

    Example:
        >>> plot_schedule(make_schedule("1cycle", base_lr=0.1, steps_per_epoch=10, epochs=5),
        ...               "lr.png")  # doctest: +SKIP
    """
    # Figure + Agg canvas directly: no pyplot global state, no GUI backend needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps, lrs, moms = schedule_curve(schedule, total_steps)
    fig = Figure(figsize=(7, 4 if moms is None else 6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1 if moms is None else 2, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot(steps, lrs)
    axes[0].set_ylabel("learning rate")
    axes[0].set_title(title or f"{schedule.name} schedule")
    if moms is not None:
        axes[1].plot(steps, moms, color="tab:orange")
        axes[1].set_ylabel("momentum")
    axes[-1].set_xlabel("iteration")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
