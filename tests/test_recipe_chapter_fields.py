"""The recipe fields that reproduce the chapter's notebook reach the engine, and the recipe
accepts exactly what the engine accepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainwell.compose import build_from_recipe
from trainwell.errors import ConfigError
from trainwell.recipe import apply_overrides, recipe_from_dict


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    path = tmp_path_factory.mktemp("fields") / "tiny.npz"
    np.savez(path, x=x, y=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))
    return path


def test_chapter_fields_reach_the_model_optimizer_and_schedule(tiny_npz):
    from trainwell.optim.velocity import VelocitySGD

    r = recipe_from_dict({
        "data": {"dataset": str(tiny_npz), "validation": 16},
        "model": {"hidden": {"layers": 3, "units": 5}, "activation": "selu",
                  "init_distribution": "truncated_normal", "output_init": "glorot",
                  "input_batch_norm": True, "bn_epsilon": 1e-3},
        "optimizer": {"name": "nesterov", "lr": 0.01, "momentum_form": "keras"},
        "schedule": {"name": "exponential", "decay_steps": 2, "step": "epoch"},
        "train": {"device": "cpu", "epochs": 3, "batch_size": 16},
    })
    assert r.model.hidden == [5, 5, 5]
    splits, model, trainer = build_from_recipe(r)
    assert model.input_bn.eps == 1e-3
    assert model.trainwell_config["output_init"] == "glorot"
    assert model.trainwell_config["init_distribution"] == "truncated_normal"
    assert isinstance(trainer.optimizer, VelocitySGD)
    assert trainer.optimizer.param_groups[0]["nesterov"] is True
    trainer.fit(splits.x_train, splits.y_train, epochs=3, batch_size=16)
    lrs = [row["lr"] for row in trainer.history.epochs]
    assert lrs == pytest.approx([0.01 * 0.1 ** (e / 2) for e in range(3)])   # one rate per epoch


def test_compact_hidden_works_from_the_command_line_too():
    from trainwell.recipe import Recipe

    r = apply_overrides(Recipe(), ["model.hidden={layers = 4, units = 10}"])
    assert r.model.hidden == [10] * 4
    with pytest.raises(ConfigError, match="model.hidden.*layers = N"):
        apply_overrides(Recipe(), ["model.hidden={layers = 0, units = 10}"])


def test_recipe_choices_are_the_engines():
    from trainwell.config.schema import ModelSection, OptimizerSection, ScheduleSection
    from trainwell.nn.init import DISTRIBUTIONS, INITIALIZERS
    from trainwell.optim.schedules import STEP_UNITS
    from trainwell.optim.velocity import MOMENTUM_FORMS

    def static(section, field):
        return tuple(section.model_fields[field].json_schema_extra["static"])

    assert static(ModelSection, "init_distribution") == DISTRIBUTIONS
    assert static(OptimizerSection, "momentum_form") == MOMENTUM_FORMS
    assert static(ScheduleSection, "step") == STEP_UNITS
    for name in INITIALIZERS.names():
        assert recipe_from_dict({"model": {"output_init": name}}).model.output_init == name
    for bad in ({"model": {"output_init": "zeros"}}, {"schedule": {"step": "batch"}},
                {"optimizer": {"momentum_form": "tf"}},
                {"model": {"init_distribution": "gaussian"}}):
        with pytest.raises(ConfigError):
            recipe_from_dict(bad)


def test_default_model_is_unchanged_by_the_new_fields(tiny_npz):
    """The defaults are the documented values: the same initial weights when spelled out."""
    from trainwell.nn import build_model

    torch.manual_seed(3)
    a = build_model(input_shape=6, n_outputs=3, hidden=[5], init="he")
    torch.manual_seed(3)
    b = build_model(input_shape=6, n_outputs=3, hidden=[5], init="he", output_init="same",
                    input_batch_norm=False, init_distribution="truncated_normal")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
