"""Recipes: [train] metrics and class_weight reach the Trainer; bad values are one error."""

from __future__ import annotations

import json

import pytest

from trainwell.config import apply_overrides, load_recipe, save_recipe
from trainwell.errors import ConfigError
from trainwell.train.weighting import class_weight_arg


def test_metrics_and_class_weight_round_trip_and_refuse_bad_values(tmp_path, tiny_dir):
    r = apply_overrides(load_recipe(tiny_dir / "tiny.toml"),
                        ['train.metrics=["f1", "top_2"]', 'train.class_weight={"1" = 2.5}'])
    assert r.train.metrics == ["f1", "top_2"] and class_weight_arg(r.train.class_weight) == {1: 2.5}
    save_recipe(r, tmp_path / "again.toml")
    again = load_recipe(tmp_path / "again.toml")
    assert again.train.metrics == ["f1", "top_2"] and again.train.class_weight == {"1": 2.5}
    assert class_weight_arg(apply_overrides(r, ["train.class_weight=balanced"])
                            .train.class_weight) == "balanced"
    with pytest.raises(ConfigError, match="train.metrics"):
        apply_overrides(r, ['train.metrics=["f2"]'])
    with pytest.raises(ConfigError, match="train.class_weight"):
        apply_overrides(r, ["train.class_weight=heavy"])
    with pytest.raises(ConfigError, match="train.class_weight"):
        apply_overrides(r, ["train.class_weight=[1.0, -2.0]"])


def test_a_recipe_run_records_the_metrics_and_uses_the_class_weights(tmp_path, tiny_dir):
    from trainwell.workflows.run import fit_recipe

    r = apply_overrides(load_recipe(tiny_dir / "tiny.toml"),
                        ['train.metrics=["f1", "precision"]', "train.class_weight=balanced",
                         "train.epochs=2"])
    result = fit_recipe(r, out=tmp_path, quiet=True)
    history = json.loads((result.run_dir / "history.json").read_text())
    assert {"f1", "val_f1", "precision", "val_precision"} <= set(history[-1])
    assert result.trainer.task.weighted  # the loss weights each sample by its class
