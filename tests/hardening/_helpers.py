"""Helpers of the hardening tests: tiny data, a recipe for it, and `trainwell` as a subprocess.

Loaded by file path (``load_helpers``), so the tests run however pytest was started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

TINY = """\
name = "tiny"

[data]
dataset = "{path}"
validation = 40

[model]
hidden = [16]

[optimizer]
name = "adam"
lr = 0.01

[train]
epochs = {epochs}
batch_size = 16
device = "cpu"
checkpoint_every_steps = {every_steps}
"""


def write_npz(path: Path, n: int = 240, n_test: int = 40, features: int = 6, classes: int = 3,
              **override) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(features, classes))
    x = rng.normal(size=(n, features)).astype(np.float32)
    xt = rng.normal(size=(n_test, features)).astype(np.float32)
    arrays = {"x": x, "y": (x @ w).argmax(1), "x_test": xt, "y_test": (xt @ w).argmax(1)}
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def write_recipe(folder: Path, epochs: int = 2, every_steps: int = 0, **npz) -> Path:
    data = write_npz(folder / "tiny.npz", **npz)
    recipe = folder / "tiny.toml"
    recipe.write_text(TINY.format(path=data.as_posix(), epochs=epochs, every_steps=every_steps))
    return recipe


def trainwell_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainwell", *args]


def env() -> dict[str, str]:
    e = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    e["PYTHONPATH"] = src + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def run_trainwell(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(trainwell_cmd(*args), capture_output=True, text=True, env=env(),
                          timeout=timeout, **kw)


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
