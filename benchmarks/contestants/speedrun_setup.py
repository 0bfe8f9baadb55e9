"""What every contestant of the speedrun race shares: the recipe's settings and the data.

The settings are read from trainwell's ``speedrun.toml`` (with trainwell's defaults for what it
leaves unset), so the hand-written contestants train exactly the recipe's network and schedule.
Only numpy and the standard library are imported here: a contestant pays for its own framework.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE = Path(__file__).resolve().parents[2] / "src" / "trainwell" / "recipes" / "speedrun.toml"


@dataclass(frozen=True)
class Speedrun:
    hidden: tuple[int, ...]
    bn_momentum: float  # Keras convention: running ← running·m + batch·(1−m)
    bn_epsilon: float
    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    label_smoothing: float
    precision: str
    # trainwell's 1cycle: lr max/start_div → max over warmup_frac of the steps → max/start_div
    # at 1 − anneal_frac → max/final_div at the end; β1 goes max_m → min_m → max_m, mirrored.
    warmup_frac: float = 0.45
    anneal_frac: float = 0.1
    start_div: float = 10.0
    final_div: float = 1000.0
    max_momentum: float = 0.95
    min_momentum: float = 0.85

    def lr_and_beta1(self, step: int, total: int) -> tuple[float, float]:
        """The learning rate and β1 of 0-based iteration ``step`` out of ``total``."""
        t1, t2 = self.warmup_frac * total, (1 - self.anneal_frac) * total
        hi = self.lr
        lo = hi / self.start_div
        if step < t1:
            f = step / t1
            return lo + (hi - lo) * f, self.max_momentum + (self.min_momentum - self.max_momentum) * f
        if step < t2:
            f = (step - t1) / (t2 - t1)
            return hi + (lo - hi) * f, self.min_momentum + (self.max_momentum - self.min_momentum) * f
        f = min(1.0, (step - t2) / max(total - t2, 1))
        return lo + (hi / self.final_div - lo) * f, self.max_momentum


def speedrun() -> Speedrun:
    """The settings of ``speedrun.toml``."""
    r = tomllib.loads(RECIPE.read_text())
    m, o, s, t = r["model"], r["optimizer"], r.get("schedule", {}), r["train"]
    assert s.get("name") == "onecycle" and o["name"] == "adamw" and m["batch_norm"] == "before"
    extra = {k: s[k] for k in ("warmup_frac", "anneal_frac", "start_div", "final_div",
                               "max_momentum", "min_momentum") if k in s}
    return Speedrun(hidden=tuple(m["hidden"]), bn_momentum=m.get("bn_momentum", 0.99),
                    bn_epsilon=m.get("bn_epsilon", 1e-5), lr=o["lr"],
                    weight_decay=o["weight_decay"], epochs=t["epochs"],
                    batch_size=t["batch_size"], label_smoothing=t.get("label_smoothing", 0.0),
                    precision=t.get("precision", "fp32"), **extra)


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All 60,000 training and 10,000 test images, flattened, standardized per pixel with the
    training statistics (as trainwell does), float32; labels int64."""
    d = Path(os.environ["TRAINWELL_DATA"]) / "fashion-mnist"
    x = _idx(d / "train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
    y = _idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = _idx(d / "t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
    yt = _idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    return (x - mean) / std, y, (xt - mean) / std, yt
