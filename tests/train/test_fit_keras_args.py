"""Trainer.fit as Keras users expect it: verbose, validation_split, class/sample weights, loss
objects, metrics by name, and metrics written by callbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.train import Callback, Trainer
from trainwell.train.weighting import _class_weights


def _data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.8).long()
    return x, y


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _trainer(**kw):
    kw.setdefault("optimizer", "sgd")
    kw.setdefault("lr", 0.05)
    return Trainer(_model(), device="cpu", **kw)


def test_verbose_auto_prints_one_line_per_epoch_outside_a_terminal_and_0_nothing(capsys):
    x, y = _data()
    _trainer().fit(x, y, epochs=3, batch_size=40)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    _trainer().fit(x, y, epochs=2, batch_size=40, verbose=0)
    assert capsys.readouterr().err == ""
    t = _trainer()
    t.fit(x, y, epochs=1, batch_size=40, verbose=2)
    assert capsys.readouterr().err.count("epoch 1/1") == 1
    with pytest.raises(ConfigError, match="verbose"):
        t.fit(x, y, epochs=1, verbose=3)


def test_validation_split_holds_out_the_last_samples():
    x, y = _data()
    t = _trainer()
    hist = t.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
    assert t._data["n"] == 90  # ceil(120 · 0.75) samples trained on
    assert hist.epochs[-1]["val_loss"] == pytest.approx(t.evaluate(x[90:], y[90:])["loss"])
    with pytest.raises(ConfigError, match="validation_split"):
        t.fit(x, y, epochs=1, validation_split=1.0)


def test_balanced_class_weights_follow_n_over_classes_times_count():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0])  # counts 5, 2, 1
    w = _class_weights("balanced", y, "multiclass", 3)
    assert w.tolist() == pytest.approx([8 / (3 * 5), 8 / (3 * 2), 8 / (3 * 1)])
    assert _class_weights({2: 4.0}, y, "multiclass", 3).tolist() == [1.0, 1.0, 4.0]
    with pytest.raises(ConfigError, match="class_weight"):
        _class_weights([1.0, 2.0], y, "multiclass", 3)


def test_weighted_loss_is_sum_of_weight_times_loss_over_batch_size():
    x, y = _data(16)
    sw = torch.rand(16, generator=torch.Generator().manual_seed(1))
    t = _trainer()
    t.fit(x, y, epochs=1, batch_size=16, sample_weight=sw, class_weight=[1.0, 2.0, 0.5],
          verbose=0)
    packed = t.task.prepare_targets(y)
    packed[:, -1] = sw * torch.tensor([1.0, 2.0, 0.5])[y]
    with torch.no_grad():
        logits = t.model(x)
        got = t.task.loss(logits, packed)
    expected = (F.cross_entropy(logits, y, reduction="none") * packed[:, -1]).sum() / 16
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_doubling_every_weight_is_plain_sgd_with_twice_the_learning_rate():
    x, y = _data()
    weighted = _trainer(lr=0.05).fit(x, y, epochs=3, batch_size=30, shuffle=False,
                                     sample_weight=torch.full((120,), 2.0),
                                     validation_data=(x, y), verbose=0)
    plain = _trainer(lr=0.1).fit(x, y, epochs=3, batch_size=30, shuffle=False,
                                 validation_data=(x, y), verbose=0)
    for a, b in zip(weighted.epochs, plain.epochs, strict=True):
        assert a["loss"] == pytest.approx(2 * b["loss"], rel=1e-4)  # the loss is weighted
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)  # evaluation is not
    with pytest.raises(DataError, match="sample_weight"):
        _trainer().fit(x, y, epochs=1, sample_weight=torch.ones(5))


def test_any_loss_object_or_function_is_minimized_and_reported():
    x, y = _data()
    loss = nn.CrossEntropyLoss(label_smoothing=0.2)
    t = _trainer(loss=loss)
    t.fit(x, y, epochs=2, batch_size=40, verbose=0)
    assert t.evaluate(x, y)["loss"] == pytest.approx(loss(t.model(x), y).item(), rel=1e-5)
    t2 = _trainer(loss=lambda logits, target: F.cross_entropy(logits, target) * 3)
    h = t2.fit(x, y, epochs=1, batch_size=120, verbose=0)
    assert h.epochs[0]["loss"] == pytest.approx(3 * F.cross_entropy(_model()(x), y).item(),
                                                rel=1e-5)
    weighted_ce = _trainer(loss=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0])))
    weighted_ce.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="loss"):
        _trainer(loss=42)


def test_metrics_by_name_match_their_formulas_on_train_and_validation():
    x, y = _data(200)
    t = _trainer(metrics=["f1", "precision", "recall", "top_2", "auc"])
    h = t.fit(x, y, epochs=2, batch_size=50, validation_data=(x, y), verbose=0)
    for key in ("f1", "val_f1", "precision", "val_recall", "top_2", "val_auc"):
        assert key in h.epochs[-1]
    got = t.evaluate(x, y)
    pred = t.predict(x)
    cm = torch.zeros(3, 3)
    for a, b in zip(y.tolist(), pred.tolist(), strict=True):
        cm[a, b] += 1
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = torch.where(tp > 0, 2 * precision * recall / (precision + recall), torch.zeros(3))
    assert got["precision"] == pytest.approx(float(precision.mean()), abs=1e-5)
    assert got["recall"] == pytest.approx(float(recall.mean()), abs=1e-5)
    assert got["f1"] == pytest.approx(float(f1.mean()), abs=1e-5)
    top2 = (t.model(x).topk(2, dim=1).indices == y[:, None]).any(1).float().mean()
    assert got["top_2"] == pytest.approx(float(top2), abs=1e-6)
    assert got == {**got, "loss": h.epochs[-1]["val_loss"]}  # evaluation = last validation


def test_regression_metrics_and_bad_metric_names():
    x = torch.randn(64, 3)
    y = x.sum(1, keepdim=True)
    t = Trainer(nn.Linear(3, 1), task="regression", metrics=["rmse", "r2"], device="cpu")
    t.fit(x, y, epochs=2, verbose=0)
    got = t.evaluate(x, y)
    err = t.predict(x) - y
    assert got["rmse"] == pytest.approx(float(err.pow(2).mean().sqrt()), rel=1e-4)
    assert got["r2"] == pytest.approx(float(1 - err.pow(2).sum() / (y - y.mean()).pow(2).sum()),
                                      rel=1e-4)
    with pytest.raises(ConfigError, match="train.metrics.*f1"):
        Trainer(nn.Linear(3, 1), task="regression", metrics=["f1"])
    with pytest.raises(ConfigError, match="train.metrics"):
        Trainer(nn.Linear(3, 3), metrics=["accuracy", "nope"])


class _Custom(Callback):
    def on_epoch_end(self, t, epoch, logs):
        logs["my_score"] = epoch * 10.0


def test_a_metric_a_callback_writes_at_epoch_end_lands_in_the_history():
    x, y = _data()
    h = _trainer(callbacks=[_Custom()]).fit(x, y, epochs=2, verbose=0)
    assert [e["my_score"] for e in h.epochs] == [10.0, 20.0]
    assert "my_score" in h.keys()
