"""Pictures of gradient health over training: a heatmap of log10 gradient norm per layer and
the activation standard deviation per layer (matplotlib, Agg canvas, no pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainwell.diagnose.stats import ProbeRecord
from trainwell.figures import new_figure, save_figure

__all__ = ["plot_gradient_heatmap", "plot_activation_std", "plot_diagnostics"]


def _figure(width: float, height: float):
    return new_figure(width, height)


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path)


def _ticks(record: ProbeRecord, ax) -> None:
    n = len(record.layers)
    step = max(1, n // 20)   # at most ~20 labels on deep networks
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    ax.set_yticks(idx)
    ax.set_yticklabels([record.layers[i] for i in idx], fontsize=7)


def plot_gradient_heatmap(record: ProbeRecord, path: str | os.PathLike,
                          title: str = "log10 gradient norm per layer") -> Path:
    """Heatmap: one row per layer (lowest layer at the bottom), one column per sample, colour
    = log10 ‖∂L/∂W‖₂. Vanishing gradients show as a dark bottom, exploding ones as a bright
    band growing over time; NaN/Inf cells are drawn in red."""
    g = record.column("grad_norm").T   # (layers, samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        logg = np.log10(g)
    bad = ~np.isfinite(logg)
    shown = np.ma.masked_array(logg, mask=bad)
    n_layers = len(record.layers)
    fig, ax = _figure(7.0, max(3.0, min(9.0, 1.5 + 0.18 * n_layers)))
    steps = record.steps if len(record) else np.zeros(1)
    last = steps[-1] if steps[-1] > steps[0] else steps[0] + 1
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="red")
    im = ax.imshow(shown, aspect="auto", origin="lower", cmap=cmap, interpolation="nearest",
                   extent=(float(steps[0]), float(last), -0.5, n_layers - 0.5))
    fig.colorbar(im, ax=ax, label="log10 ‖∇W‖")
    _ticks(record, ax)
    ax.set_xlabel("training step")
    ax.set_title(title + (" (red: NaN/Inf)" if bad.any() else ""))
    return _save(fig, Path(path))


def plot_activation_std(record: ProbeRecord, path: str | os.PathLike,
                        title: str = "activation std per layer") -> Path:
    """Activation standard deviation of each hidden layer over training, coloured by depth
    (dark = lowest). Curves collapsing toward 0 mean the signal dies out on its way up;
    growing ones, that it explodes; a sigmoid stuck near std 0.5 is saturated (outputs at 0
    and 1)."""
    # hidden layers only: the logits' scale says nothing about the signal and would squash
    # the other curves (layers without an activation module are kept when none has one)
    keep = [i for i, k in enumerate(record.kinds) if k != "none"] or list(range(len(record.layers)))
    std = record.column("act_std")[:, keep]
    names = [record.layers[i] for i in keep]
    n = len(keep)
    fig, ax = _figure(7.0, 4.0)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for j in range(n):
        ax.plot(record.steps, std[:, j], color=cmap(j / max(1, n - 1)), lw=1.2,
                label=names[j] if n <= 10 else None, marker="o" if len(record) < 3
                else None, markersize=3)
    if n <= 10:
        ax.legend(fontsize=7, ncol=2)
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        sm = ScalarMappable(norm=Normalize(1, n), cmap=cmap)
        fig.colorbar(sm, ax=ax, label="layer (1 = lowest)")
    finite = std[np.isfinite(std) & (std > 0)]
    if finite.size and finite.max() / max(finite.min(), 1e-30) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("std of the layer's output")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return _save(fig, Path(path))


def plot_diagnostics(record: ProbeRecord, plots_dir: str | os.PathLike) -> list[Path]:
    """Write ``gradient_norms.png`` and ``activation_std.png`` into ``plots_dir``."""
    if len(record) == 0:
        return []
    d = Path(plots_dir)
    return [plot_gradient_heatmap(record, d / "gradient_norms.png"),
            plot_activation_std(record, d / "activation_std.png")]
