"""Rich display in Jupyter: the HTML behind ``_repr_html_`` of histories, runs, comparisons
and diagnoses (a table and inline learning curves, no files needed)."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["fmt", "html_table", "curves_img", "section"]

_STYLE = ("border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px;"
          "margin:4px 0")
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"


def fmt(value: Any) -> str:
    """A number with 4 significant digits; other values as text; None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
               caption: str | None = None) -> str:
    """A compact HTML table (values escaped, numbers formatted by :func:`fmt`)."""
    cap = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th style='{_CELL}'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(fmt(v))}</td>"
                                    for v in row) + "</tr>" for row in rows)
    return f"<table style='{_STYLE}'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, *parts: str) -> str:
    return (f"<div class='trainwell'><div style='font-weight:bold;margin:4px 0'>"
            f"{html.escape(title)}</div>{''.join(parts)}</div>")


def curves_img(rows: Sequence[dict[str, Any]], width: float = 8.0) -> str:
    """Learning curves (loss, then accuracy or mae; training and validation) as an inline PNG.

    Returns "" when there is nothing to plot or matplotlib is unavailable.
    """
    if not rows:
        return ""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except Exception:  # display without curves rather than fail
        return ""
    metric = next((k for k in ("accuracy", "mae") if k in rows[0]), None)
    panels = ["loss"] + ([metric] if metric else [])
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.6), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            ys = [r.get(name) for r in rows]
            if any(isinstance(y, (int, float)) for y in ys):
                ax.plot(epochs, [y if isinstance(y, (int, float)) else float("nan") for y in ys],
                        style, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='learning curves' src='data:image/png;base64,{data}'/>"
