"""train.label_smoothing: the smoothed cross-entropy / BCE of the formula, from recipe to trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainwell.compose import build_from_recipe
from trainwell.errors import ConfigError
from trainwell.recipe import recipe_from_dict
from trainwell.tasks import get_task
from trainwell.train.weighting import with_weights


def _smoothed_ce(logits, y, eps):
    # The formula: targets q = (1 − ε)·one-hot + ε/K, loss = −Σ_k q_k log softmax_k.
    k = logits.shape[1]
    q = torch.nn.functional.one_hot(y, k).float() * (1 - eps) + eps / k
    return -(q * logits.log_softmax(1)).sum(1)


def test_cross_entropy_with_label_smoothing_is_the_formula():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(12, 5, generator=g), torch.randint(0, 5, (12,), generator=g)
    t = get_task("multiclass", label_smoothing=0.2)
    per = _smoothed_ce(logits, y, 0.2)
    assert torch.allclose(t.loss(logits, y), per.mean(), atol=1e-6)
    sums = t.metric_sums(logits, y)
    assert torch.allclose(sums["loss"], per.sum(), atol=1e-5)
    assert sums["accuracy"].item() == (logits.argmax(1) == y).sum().item()  # unchanged
    assert not torch.allclose(get_task("multiclass").loss(logits, y), per.mean())


def test_bce_with_label_smoothing_pulls_targets_towards_one_half():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(10, 1, generator=g), torch.randint(0, 2, (10,), generator=g).float()
    eps = 0.1
    q = y * (1 - eps) + eps / 2  # Keras' binary label smoothing
    p = torch.sigmoid(logits.reshape(-1))
    oracle = -(q * p.log() + (1 - q) * (1 - p).log())
    t = get_task("binary", label_smoothing=eps)
    assert torch.allclose(t.loss(logits, y), oracle.mean(), atol=1e-6)
    assert torch.allclose(t.metric_sums(logits, y)["loss"], oracle.sum(), atol=1e-5)


def test_class_weights_keep_the_smoothing():
    t = with_weights(get_task("multiclass", label_smoothing=0.1), True)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    packed = t.prepare_targets(y)
    assert torch.allclose(t.loss(logits, packed), _smoothed_ce(logits, y, 0.1).mean(), atol=1e-6)


@pytest.mark.parametrize("kwargs", [
    {"name": "regression", "label_smoothing": 0.1},
    {"name": "multiclass", "label_smoothing": 1.0},
    {"name": "multiclass", "label_smoothing": -0.1},
])
def test_bad_label_smoothing_names_the_field(kwargs):
    with pytest.raises(ConfigError, match="train.label_smoothing"):
        get_task(**kwargs)


def test_recipe_refuses_smoothing_with_a_regression_loss_before_any_data():
    with pytest.raises(ConfigError, match="train.label_smoothing"):
        recipe_from_dict({"model": {"loss": "mse"}, "train": {"label_smoothing": 0.1}})
    with pytest.raises(ConfigError, match="train.label_smoothing"):
        recipe_from_dict({"train": {"label_smoothing": 1.5}})


def test_the_recipe_field_reaches_the_trainers_loss(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 3))).argmax(1)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    r = recipe_from_dict({"data": {"dataset": str(tmp_path / "d.npz"), "validation": 0},
                          "model": {"hidden": [8]},
                          "train": {"device": "cpu", "label_smoothing": 0.3}})
    splits, model, trainer = build_from_recipe(r)
    assert trainer.task.label_smoothing == 0.3
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    with torch.no_grad():
        expected = _smoothed_ce(model(xt), yt, 0.3).mean()
    assert abs(trainer.evaluate(xt, yt)["loss"] - float(expected)) < 1e-4
    hist = trainer.fit(xt, yt, epochs=1, batch_size=16, verbose=0)
    assert len(hist) == 1
