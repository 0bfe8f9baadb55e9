"""The arrays a dataset source yields before splitting: :class:`RawData`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RawData"]


@dataclass
class RawData:
    """Arrays as read from a source (numpy, not yet scaled, split or standardized).

    ``x_test``/``y_test`` are None when the source has no test set (a test set is then
    held out by :func:`trainwell.data.load_dataset`). ``scale`` divides the features
    before anything else (255 for uint8 images, 1 otherwise).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    task: str
    n_outputs: int
    class_names: list[str] | None = None
    scale: float = 1.0
    source: str = ""
