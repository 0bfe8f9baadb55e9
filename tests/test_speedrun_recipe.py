"""The speedrun recipe: what it promises, that it trains, and that the race reads the same settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from trainwell.compose import build_from_recipe
from trainwell.recipe import apply_overrides, resolve

ROOT = Path(__file__).resolve().parents[1]


def _race_setup():
    path = ROOT / "benchmarks" / "contestants" / "speedrun_setup.py"
    spec = importlib.util.spec_from_file_location("speedrun_setup", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["speedrun_setup"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_speedrun_trains_every_image_without_checkpoints_or_early_stopping():
    r = resolve("speedrun")
    assert r.data.validation == 0 and not r.train.early_stopping
    assert r.train.checkpoint_every_epochs == 0
    assert r.train.label_smoothing > 0 and r.train.precision == "bf16"


def test_the_race_contestants_train_the_recipes_settings():
    r = resolve("speedrun")
    cfg = _race_setup().speedrun()
    assert list(cfg.hidden) == list(r.model.hidden)
    assert (cfg.lr, cfg.weight_decay) == (r.optimizer.lr, r.optimizer.weight_decay)
    assert (cfg.epochs, cfg.batch_size) == (r.train.epochs, r.train.batch_size)
    assert cfg.label_smoothing == r.train.label_smoothing and cfg.precision == r.train.precision
    assert (cfg.bn_momentum, cfg.bn_epsilon) == (r.model.bn_momentum, r.model.bn_epsilon)
    # the contestants' 1cycle is trainwell's, step by step
    from trainwell.optim import make_schedule

    s = make_schedule("onecycle", base_lr=r.optimizer.lr, steps_per_epoch=7, epochs=3)
    for t in range(21):
        lr, beta1 = cfg.lr_and_beta1(t, 21)
        assert abs(lr - s.lr_at(t)) < 1e-12 and abs(beta1 - s.momentum_at(t)) < 1e-12


def test_speedrun_trains_an_epoch_in_bf16_on_the_cpu(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x @ rng.normal(size=(6, 3))).argmax(1))
    r = apply_overrides(resolve("speedrun"), [f"data.dataset={tmp_path / 'd.npz'}",
                                              "model.hidden=[16, 8]", "train.epochs=1",
                                              "train.batch_size=32", "train.device=cpu"])
    splits, model, trainer = build_from_recipe(r)
    hist = trainer.fit(splits.x_train, splits.y_train, epochs=1, batch_size=32, verbose=0)
    assert len(hist) == 1 and np.isfinite(hist.to_list()[0]["loss"])
    assert trainer.precision.name == "bf16"
