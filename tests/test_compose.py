"""compose: recipes become build_model / Trainer keyword arguments; every built-in recipe trains."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from trainwell.compose import build_from_recipe, model_kwargs, trainer_kwargs
from trainwell.recipe import apply_overrides, builtin_recipes, recipe_from_dict, resolve

OWN_RECIPES = ["default", "selu", "batchnorm", "power", "exponential", "piecewise",
               "performance", "onecycle", "dropout", "mc_dropout", "max_norm", "l1_sparse",
               "low_latency", "risk_sensitive", "clipping"]


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    x = rng.normal(size=(96, 4)).astype(np.float32)
    path = tmp_path_factory.mktemp("compose") / "tiny.npz"
    np.savez(path, x=x, y=(x @ w).argmax(1), x_test=x[:16], y_test=(x[:16] @ w).argmax(1))
    return path


def test_model_and_trainer_kwargs_are_the_recipe_fields(tiny_npz):
    r = recipe_from_dict({
        "data": {"dataset": str(tiny_npz), "validation": 16},
        "model": {"hidden": [8, 4], "activation": "elu", "batch_norm": "after",
                  "bn_momentum": 0.9},
        "regularization": {"dropout": 0.1, "l2": 1e-4, "max_norm": 2.0},
        "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01, "clip_norm": 1.0},
        "schedule": {"name": "performance", "factor": 0.2, "max_lr": 0.1},
        "train": {"seed": 7, "device": "cpu"},
    })
    splits, model, trainer = build_from_recipe(r)
    mk = model_kwargs(r, splits)
    assert mk["hidden"] == [8, 4] and mk["activation"] == "elu" and mk["batch_norm"] == "after"
    assert mk["dropout"] == 0.1 and mk["bn_momentum"] == 0.9 and mk["task"] == "multiclass"
    assert model.trainwell_config["hidden"] == [8, 4]
    tk = trainer_kwargs(r, splits)
    assert tk["optimizer"] == "adamw" and tk["lr"] == 0.003
    assert tk["optimizer_params"]["weight_decay"] == 0.01
    assert tk["clip_norm"] == 1.0 and tk["l2"] == 1e-4 and tk["max_norm"] == 2.0
    # only the named schedule's parameters reach make_schedule
    assert tk["schedule"] == "performance" and tk["schedule_params"] == {"factor": 0.2}
    assert trainer.seed == 7 and str(trainer.device) == "cpu"


def test_the_initial_weights_depend_only_on_the_seed(tiny_npz):
    r = recipe_from_dict({"data": {"dataset": str(tiny_npz), "validation": 16},
                          "model": {"hidden": [8]}, "train": {"device": "cpu"}})
    _, a, _ = build_from_recipe(r)
    torch.rand(100)  # other random draws in between change nothing
    _, b, _ = build_from_recipe(r)
    _, c, _ = build_from_recipe(apply_overrides(r, ["train.seed=1"]))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


@pytest.mark.parametrize("name", OWN_RECIPES)
def test_every_practice_recipe_builds_and_trains_an_epoch(name, tiny_npz):
    assert name in builtin_recipes()
    r = apply_overrides(resolve(name), [f"data.dataset={tiny_npz}", "data.validation=16",
                                        "train.epochs=1", "train.device=cpu",
                                        "model.hidden=[8, 8]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. SELU on a tiny unscaled set
        splits, model, trainer = build_from_recipe(r, progress=False)
        hist = trainer.fit(splits.x_train, splits.y_train, epochs=1,
                           batch_size=r.train.batch_size,
                           validation_data=(splits.x_val, splits.y_val))
    assert len(hist) == 1 and np.isfinite(hist.last()["loss"])


@pytest.fixture(scope="module")
def two_class_npz(tmp_path_factory):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    path = tmp_path_factory.mktemp("compose2") / "two.npz"
    np.savez(path, x=x, y=y, x_test=x[:20], y_test=y[:20])
    return path


def test_binary_task_on_two_classes_builds_one_sigmoid_output(two_class_npz):
    from trainwell.compose import load_splits

    r = recipe_from_dict({"data": {"dataset": str(two_class_npz), "validation": 20,
                                   "standardize": False},
                          "model": {"hidden": [4], "task": "binary"},
                          "train": {"device": "cpu", "epochs": 1}})
    raw = np.load(two_class_npz)
    splits, model, trainer = build_from_recipe(r)
    assert splits.task == "binary" and splits.n_outputs == 1
    assert model_kwargs(r, splits)["n_outputs"] == 1 and model(splits.x_test).shape == (20, 1)
    # labels: float 0/1 with 1 = the second class, the test split in file order
    assert splits.y_test.dtype == torch.float32
    np.testing.assert_array_equal(splits.y_test.numpy(), (raw["y_test"] == 1).astype(np.float32))
    assert set(splits.y_train.unique().tolist()) == {0.0, 1.0}
    trainer.fit(splits.x_train, splits.y_train, epochs=1, batch_size=16)
    assert trainer.status == "completed"
    # every loader of the recipe's data agrees (evaluate, lrfind, transfer use load_splits)
    assert load_splits(r, progress=False).task == "binary"
    # the default (multiclass) keeps two softmax outputs and integer labels
    s2, m2, _ = build_from_recipe(apply_overrides(r, ['model.task="auto"']))
    assert s2.task == "multiclass" and m2(s2.x_test).shape == (20, 2)
    assert s2.y_test.dtype == torch.int64


def test_an_unresolved_auto_max_lr_is_named(tiny_npz):
    from trainwell.errors import ConfigError

    r = recipe_from_dict({"data": {"dataset": str(tiny_npz), "validation": 16},
                          "model": {"hidden": [4]}, "schedule": {"max_lr": "auto"},
                          "train": {"device": "cpu"}})
    with pytest.raises(ConfigError, match="schedule.max_lr"):
        build_from_recipe(r)
