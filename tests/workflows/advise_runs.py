"""Tiny synthetic runs, each built to show one finding of ``trainwell advise``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def make_npz(path: Path, *, n: int = 1200, d: int = 16, k: int = 4, noise: float = 0.0,
             seed: int = 0) -> Path:
    """A 4-class problem from a small nonlinear teacher; ``noise`` flips that many labels."""
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d)).astype("float32")
    w = g.standard_normal((d, k))
    y = (np.tanh(x @ w) @ g.standard_normal((k, k)) + x[:, :k] * 0.5).argmax(1)
    flip = g.random(n) < noise
    y[flip] = g.integers(0, k, int(flip.sum()))
    np.savez(path, x=x, y=y.astype("int64"))
    return path


BASE = ["train.device=cpu", "train.checkpoint_every_epochs=0", "optimizer.name=adam",
        "optimizer.lr=0.01", "schedule.name=constant", "train.batch_size=32",
        "model.hidden=[32]", "train.early_stopping=false",
        "model.init_distribution=normal"]  # the init the runs were built to show each finding with

#: name -> (dataset, overrides): what each run is built to show
CASES = {
    # SGD with η = 20: the loss leaves the range of a uniform guess
    "too_high_lr": ("clean", ["data.validation=200", "optimizer.name=sgd", "optimizer.lr=20.0",
                              "optimizer.momentum=0.0", "train.epochs=4",
                              "model.hidden=[32, 32]"]),
    # one hidden unit for four classes: the training loss plateaus far from 0
    "tiny": ("clean", ["data.validation=400", "model.hidden=[1]", "train.epochs=20",
                       "optimizer.lr=0.03"]),
    # 2×256 units on 500 noisy examples, no regularization, no early stopping
    "huge": ("noisy", ["data.validation=200", "model.hidden=[256, 256]", "train.epochs=25",
                       "optimizer.lr=0.003"]),
    # the chapter's starting point: deep sigmoid with N(0, 1) weights, probed during the fit
    "sigmoid": ("clean", ["data.validation=200", "model.hidden=[32, 32, 32, 32, 32, 32, 32, 32,"
                          " 32, 32]", "model.activation=sigmoid", "model.init=normal",
                          "optimizer.name=sgd", "optimizer.lr=0.01", "train.epochs=3",
                          "train.diagnose=true", "train.diagnose_every=5"]),
    "selu_bn": ("clean", ["data.validation=200", "model.activation=selu",
                          "model.batch_norm=before", "train.epochs=4"]),
    "patience1": ("clean", ["data.validation=40", "train.early_stopping=true",
                            "train.patience=1", "train.epochs=30", "optimizer.lr=0.03"]),
    "healthy": ("clean", ["data.validation=200", "model.hidden=[64]", "optimizer.name=adamw",
                          "schedule.name=onecycle", "train.epochs=12",
                          "train.early_stopping=true"]),
}


def build_runs(folder: Path, names=None) -> dict[str, Path]:
    """Fit each case (quietly) and return ``{name: run directory}``."""
    from trainwell.config import Recipe, apply_overrides
    from trainwell.workflows.run import fit_recipe

    data = {"clean": make_npz(folder / "clean.npz"),
            "noisy": make_npz(folder / "noisy.npz", n=700, noise=0.3, seed=1)}
    runs = {}
    for name in names or CASES:
        dataset, overrides = CASES[name]
        recipe = apply_overrides(Recipe(), [f"data.dataset={data[dataset]}", *BASE, *overrides,
                                            f"name={name}"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the SELU + batch norm warning is the point
            runs[name] = fit_recipe(recipe, out=folder / "runs", quiet=True).run_dir
    return runs
