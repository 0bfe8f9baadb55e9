"""One report of each kind, built by the CLI on a tiny synthetic dataset (seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = """\
name = "tiny"
description = "3 classes of Gaussian blobs, 16-16 ReLU"

[data]
dataset = "{path}"
validation = 40

[model]
hidden = [16, 16]

[schedule]
name = "onecycle"

[train]
epochs = 4
batch_size = 32
device = "cpu"
"""


def _tiny(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(240, 6)).astype(np.float32)
    xt = rng.normal(size=(60, 6)).astype(np.float32)
    np.savez(folder / "tiny.npz", x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))
    (folder / "tiny.toml").write_text(TINY.format(path=(folder / "tiny.npz").as_posix()))
    return folder / "tiny.toml"


def _one(folder: Path) -> Path:
    return next(p for p in folder.rglob("report.html") if "export" not in p.parts)


def build_reports(root: Path, kinds: tuple[str, ...] = ("fit", "compare", "diagnose",
                                                         "pretrain", "study")) -> dict[str, Path]:
    """``{kind: report.html}`` for fit, compare, diagnose, pretrain and study runs."""
    from typer.testing import CliRunner

    from trainwell.cli import app

    root.mkdir(parents=True, exist_ok=True)
    recipe = str(_tiny(root))
    commands = {
        "fit": ["fit", recipe, "--quiet"],
        "compare": ["compare", recipe, "--vary", "model.activation=relu,elu", "--seeds", "0,1",
                    "--set", "train.epochs=3", "--quiet"],
        "diagnose": ["diagnose", recipe, "--steps", "40", "--quiet"],
        "pretrain": ["pretrain", recipe, "--epochs-per-layer", "2", "--quiet"],
        "study": ["study", "transfer", "--quick", "--seeds", "0,1", "--quiet"],
    }
    runner = CliRunner()
    out: dict[str, Path] = {}
    for kind in kinds:
        folder = root / kind
        result = runner.invoke(app, [*commands[kind], "--out", str(folder)])
        if result.exit_code != 0:
            raise AssertionError(f"{kind}: exit {result.exit_code}\n{result.output}\n"
                                 f"{result.exception!r}")
        out[kind] = _one(folder)
    return out
