"""The per-epoch record of a training run (Keras ``History``-like, plain data)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["History"]


class History:
    """The list of per-epoch records of a run.

    Each record is a plain dict: ``epoch`` (1-based), ``loss`` and the task's metrics on the
    training batches (``accuracy`` or ``mae``), ``val_loss`` / ``val_<metric>`` when validation
    data is given, ``penalty`` (the mean l1/l2 term, when used), ``lr`` (the learning rate of
    the epoch's last step), ``steps`` (global step count at the end of the epoch) and ``time``
    (seconds). ``loss`` is the data loss (without the penalty), so it compares with
    ``val_loss``.

    Example:
        >>> h = History([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
        >>> h["loss"], h.last()["epoch"]
        ([0.9, 0.5], 2)
    """

    def __init__(self, epochs: list[dict[str, Any]] | None = None):
        self.epochs: list[dict[str, Any]] = [dict(e) for e in (epochs or [])]

    def append(self, record: dict[str, Any]) -> None:
        # The epoch's own logs dict, not a copy: what callbacks add to it in on_epoch_end
        # (a custom metric) lands in the history too.
        self.epochs.append(record)

    def __len__(self) -> int:
        return len(self.epochs)

    def _repr_html_(self) -> str:
        """Jupyter: learning curves and the per-epoch table (first and last 5 of long runs)."""
        from trainwell.notebook import curves_img, html_table, section

        keys = [k for k in self.keys() if k != "steps"]
        rows = self.epochs if len(self.epochs) <= 12 else self.epochs[:5] + self.epochs[-5:]
        note = "" if rows is self.epochs else f" (first and last 5 of {len(self.epochs)})"
        return section(f"History: {len(self.epochs)} epochs{note}", curves_img(self.epochs),
                       html_table(keys, [[r.get(k) for k in keys] for r in rows]))

    def __iter__(self):
        return iter(self.epochs)

    def __getitem__(self, key: str) -> list[Any]:
        """The values of ``key`` over the epochs (``nan`` where an epoch lacks it)."""
        return [e.get(key, math.nan) for e in self.epochs]

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for e in self.epochs:
            seen.update(dict.fromkeys(e))
        return list(seen)

    @property
    def history(self) -> dict[str, list[Any]]:
        """Keras layout: ``{metric: [value per epoch]}``."""
        return {k: self[k] for k in self.keys()}

    def last(self) -> dict[str, Any]:
        return dict(self.epochs[-1]) if self.epochs else {}

    def best(self, monitor: str = "val_loss", mode: str = "auto") -> dict[str, Any]:
        """The record with the best ``monitor`` value (max for accuracy-like names)."""
        rows = [e for e in self.epochs if isinstance(e.get(monitor), (int, float))
                and math.isfinite(e[monitor])]
        if not rows:
            return {}
        maximize = mode == "max" or (mode == "auto" and _maximized(monitor))
        return dict((max if maximize else min)(rows, key=lambda e: e[monitor]))

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.epochs]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.epochs == other.epochs

    def __repr__(self) -> str:
        return f"History({len(self.epochs)} epochs, keys={self.keys()})"


def _maximized(monitor: str) -> bool:
    name = monitor.removeprefix("val_")
    return name in ("accuracy", "acc", "auc", "precision", "recall", "f1")
