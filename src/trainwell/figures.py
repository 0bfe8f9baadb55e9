"""matplotlib figures without a display: the Agg canvas, no pyplot global state, atomic saves.

Every picture trainwell draws (learning curves, gradient health, schedules, the LR range test,
comparisons) uses these two functions, so plots work in scripts, CI and notebooks alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save_figure"]


def new_figure(width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    """A matplotlib ``(Figure, Axes)`` drawn with the Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    # fixed margins: tight_layout costs more than drawing these small plots
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.14)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def save_figure(fig: Any, path: str | os.PathLike, *, tight: bool = False) -> Path:
    """Save ``fig`` as PNG (written to a temp file then renamed; ``tight`` = tight layout)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    from trainwell.atomic import atomic_write

    atomic_write(p, lambda f: fig.savefig(f, format="png"))
    return p
