import math

import numpy as np
import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.train import Callback, Trainer


def test_training_lowers_the_loss_and_records_history(blobs, mlp):
    x, y, xv, yv = blobs
    t = Trainer(mlp(), optimizer="adam", lr=0.01)
    h = t.fit(x, y, epochs=5, batch_size=16, validation_data=(xv, yv))
    assert len(h) == 5 and t.epoch == 5 and t.status == "completed"
    assert t.step == 5 * math.ceil(180 / 16)
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.9
    rec = h.last()
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "steps"):
        assert key in rec
    assert [e["epoch"] for e in h] == [1, 2, 3, 4, 5]


def test_history_metrics_equal_a_direct_computation_with_frozen_weights(blobs, mlp):
    # lr tiny → weights barely move; the epoch loss is then the mean over all samples
    x, y, _, _ = blobs
    model = mlp()
    ref = nn.functional.cross_entropy(model(x), y).item()
    acc = (model(x).argmax(1) == y).float().mean().item()
    t = Trainer(model, optimizer="sgd", lr=1e-12)
    rec = t.fit(x, y, epochs=1, batch_size=7).last()  # 180 = 25·7 + 5: partial last batch
    assert rec["loss"] == pytest.approx(ref, rel=1e-5)
    assert rec["accuracy"] == pytest.approx(acc)


def test_evaluate_and_predict_proba(blobs, mlp):
    x, y, xv, yv = blobs
    t = Trainer(mlp(), optimizer="adam", lr=0.02)
    t.fit(x, y, epochs=4, batch_size=32)
    m = t.evaluate(xv, yv)
    p = t.predict_proba(xv)
    assert p.shape == (60, 3) and torch.allclose(p.sum(1), torch.ones(60))
    assert m["accuracy"] == pytest.approx((p.argmax(1) == yv).float().mean().item())
    assert torch.equal(t.predict(xv), p.argmax(1))


def test_binary_and_regression_tasks_train(mlp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    yb = (x[:, 0] + x[:, 1] > 0).float()
    t = Trainer(mlp(d=4, k=1), task="binary", optimizer="adam", lr=0.02)
    h = t.fit(x, yb, epochs=6)
    assert h["accuracy"][-1] > 0.9
    yr = (2 * x[:, 0] - x[:, 2]).unsqueeze(1)
    t = Trainer(mlp(d=4, k=1), task="regression", loss="huber", optimizer="adam", lr=0.01)
    h = t.fit(x, yr, epochs=6)
    assert h["mae"][-1] < h["mae"][0]


def test_numpy_inputs_are_accepted(blobs, mlp):
    x, y, _, _ = blobs
    Trainer(mlp()).fit(x.numpy().astype(np.float64), y.numpy(), epochs=1)


@pytest.mark.parametrize("kwargs, field", [
    ({"lr": -1}, "optimizer.lr"), ({"clip_norm": -1}, "optimizer.clip_norm"),
    ({"max_norm": -0.5}, "regularization.max_norm"), ({"optimizer": "sgdd"}, "optimizer.name"),
    ({"task": "ranking"}, "model.task"), ({"device": "tpu9"}, "train.device"),
])
def test_bad_trainer_arguments_raise_config_error(mlp, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        Trainer(mlp(), **kwargs)


class Counter(Callback):
    def __init__(self):
        self.steps = 0

    def on_batch_start(self, t, step):
        self.steps += 1


@pytest.mark.parametrize("mutate, match", [
    (lambda x, y: (x, y[:-1]), "samples"),
    (lambda x, y: (x.index_fill(0, torch.tensor([3]), float("nan")), y), "NaN"),
    (lambda x, y: (x, y + 5), r"0\.\.2|\[0, 2\]"),
    (lambda x, y: (x[:, :4], y), "shape"),
])
def test_bad_data_raises_data_error_before_any_step(blobs, mlp, mutate, match):
    x, y, _, _ = blobs
    c = Counter()
    t = Trainer(mlp(), callbacks=[c])
    with pytest.raises(DataError, match=match):
        t.fit(*mutate(x, y), epochs=1)
    assert c.steps == 0 and t.step == 0


def test_model_with_wrong_number_of_outputs_is_named(blobs, mlp):
    x, y, _, _ = blobs
    with pytest.raises(DataError, match="binary|1 output"):
        Trainer(mlp(k=3), task="binary").fit(x, (y > 0).float(), epochs=1)
    with pytest.raises(DataError, match="labels|0..1|outside"):
        Trainer(mlp(k=2)).fit(x, y, epochs=1)  # labels up to 2 but only 2 outputs


def test_bad_fit_arguments(blobs, mlp):
    x, y, _, _ = blobs
    t = Trainer(mlp())
    with pytest.raises(ConfigError, match="train.epochs"):
        t.fit(x, y, epochs=0)
    with pytest.raises(ConfigError, match="train.batch_size"):
        t.fit(x, y, batch_size=0)


def test_compile_uses_the_compiled_step_and_falls_back_to_eager_once(blobs, mlp, monkeypatch):
    x, y, _, _ = blobs
    calls = {"compiled": 0}

    def fake_compile(fn, **kw):
        def run(*a):
            calls["compiled"] += 1
            if calls["compiled"] == 3:
                raise RuntimeError("backend exploded")
            return fn(*a)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    # (not Adam: its compiled form is capturable, which only runs inside a real compiler)
    t = Trainer(mlp(), optimizer="momentum", lr=0.02, compile=True)
    with pytest.warns(RuntimeWarning, match="eager") as rec:
        h = t.fit(x[:64], y[:64], epochs=2, batch_size=16)  # 8 steps
    assert len(rec) == 1 and calls["compiled"] == 3  # 2 compiled steps, then eager
    assert len(h) == 2 and t.step == 8 and all(math.isfinite(v) for v in h["loss"])


def test_fit_again_continues_for_more_epochs(blobs, mlp):
    x, y, _, _ = blobs
    t = Trainer(mlp())
    t.fit(x, y, epochs=2, batch_size=60)
    t.fit(x, y, epochs=1, batch_size=60)
    assert t.epoch == 3 and t.step == 9 and [e["epoch"] for e in t.history] == [1, 2, 3]


def test_same_seed_same_run_other_seed_other_order(blobs, mlp):
    x, y, _, _ = blobs

    def run(seed):
        t = Trainer(mlp(dropout=0.3), optimizer="momentum", lr=0.05, seed=seed)
        t.fit(x, y, epochs=2, batch_size=16)
        return [e["loss"] for e in t.history], t.model.state_dict()

    (h1, w1), (h2, w2), (h3, _) = run(4), run(4), run(5)
    assert h1 == h2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1 != h3
