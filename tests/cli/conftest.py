"""Fixtures of the CLI tests: a tiny synthetic dataset, a recipe for it, one trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner


def write_tiny_npz(path: Path, n: int = 240, n_test: int = 60, features: int = 6,
                   classes: int = 3, seed: int = 0) -> Path:
    """Linearly separable-ish blobs: learnable in a couple of epochs."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(features, classes))
    x = rng.normal(size=(n, features)).astype(np.float32)
    xt = rng.normal(size=(n_test, features)).astype(np.float32)
    np.savez(path, x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))
    return path


TINY_RECIPE = """\
name = "tiny"
description = "tiny synthetic test recipe"

[data]
dataset = "{path}"
validation = 40

[model]
hidden = [16]

[regularization]
dropout = 0.2

[optimizer]
name = "nesterov"
lr = 0.05

[schedule]
name = "onecycle"

[train]
epochs = 3
batch_size = 32
device = "cpu"
"""


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    write_tiny_npz(d / "tiny.npz")
    (d / "tiny.toml").write_text(TINY_RECIPE.format(path=(d / "tiny.npz").as_posix()))
    return d


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def trained_run(tiny_dir, tmp_path_factory) -> Path:
    """One run trained through the CLI, shared by the evaluate/predict tests."""
    from trainwell.cli import app

    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(out),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run
