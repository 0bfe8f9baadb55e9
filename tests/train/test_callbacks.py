import csv
import json
import math
import os
import signal
import threading

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.train import (
    Callback,
    CallbackList,
    EarlyStopping,
    HistoryLogger,
    ModelCheckpoint,
    NanGuard,
    ProgressCallback,
    Trainer,
)


class Recorder(Callback):
    def __init__(self, order=0, tag="r", log=None):
        self.order, self.tag, self.log = order, tag, log if log is not None else []

    def on_fit_start(self, t):
        self.log.append((self.tag, "fit_start"))

    def on_epoch_end(self, t, epoch, logs):
        self.log.append((self.tag, "epoch_end", epoch))

    def on_fit_end(self, t):
        self.log.append((self.tag, "fit_end"))


def test_callbacks_run_in_order_and_only_overridden_events_are_dispatched():
    log = []
    a, b = Recorder(order=5, tag="a", log=log), Recorder(order=-1, tag="b", log=log)
    cl = CallbackList([a, b])
    assert cl.callbacks == [b, a]
    assert cl.batch_end == () and cl.after_backward == ()
    assert cl.by_event["on_fit_start"] == (b, a)
    cl.call("on_fit_start", None)
    assert log == [("b", "fit_start"), ("a", "fit_start")]
    assert cl.keys == ["Recorder", "Recorder#2"]


def test_event_sequence_during_fit(blobs, mlp):
    x, y, xv, yv = blobs

    class Spy(Callback):
        def __init__(self):
            self.events = []

        def on_fit_start(self, t): self.events.append("fit_start")
        def on_epoch_start(self, t, e): self.events.append(f"epoch_start{e}")
        def on_batch_start(self, t, s): self.events.append(f"batch_start{s}")

        def on_after_backward(self, t, s):
            assert all(p.grad is not None for p in t.model.parameters())
            self.events.append(f"after_backward{s}")

        def on_batch_end(self, t, s):
            assert t.step == s + 1
            self.events.append(f"batch_end{s}")

        def on_validation_end(self, t, e, logs):
            assert "val_loss" in logs
            self.events.append(f"validation_end{e}")

        def on_epoch_end(self, t, e, logs):
            assert t.history.last()["epoch"] == e
            self.events.append(f"epoch_end{e}")

        def on_fit_end(self, t): self.events.append("fit_end")

    spy = Spy()
    Trainer(mlp(), callbacks=[spy]).fit(x[:20], y[:20], epochs=1, batch_size=10,
                                         validation_data=(xv, yv))
    assert spy.events == ["fit_start", "epoch_start1", "batch_start0", "after_backward0",
                          "batch_end0", "batch_start1", "after_backward1", "batch_end1",
                          "validation_end1", "epoch_end1", "fit_end"]


def _overfit_setup():
    # Training labels that the validation set contradicts: val loss falls, then rises.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    xv = torch.randn(64, 4, generator=g)
    yv = (xv[:, 0] > 0).long()
    yv[:24] = 1 - yv[:24]
    return x, y, xv, yv


def test_early_stopping_restores_best_weights():
    x, y, xv, yv = _overfit_setup()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, t, epoch, logs):
            snapshots[epoch] = {k: v.clone() for k, v in t.model.state_dict().items()}

    es = EarlyStopping(patience=3)
    t = Trainer(model, optimizer="adam", lr=0.05, callbacks=[es, Snap()])
    h = t.fit(x, y, epochs=60, batch_size=16, validation_data=(xv, yv))
    vl = h["val_loss"]
    best_epoch = 1 + min(range(len(vl)), key=vl.__getitem__)
    assert t.status == "stopped" and len(h) < 60
    assert len(h) == best_epoch + 3 and es.best_epoch == best_epoch
    assert vl[-1] > vl[best_epoch - 1]  # it did get worse
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, snapshots[best_epoch][k])
    assert t.evaluate(xv, yv)["loss"] == pytest.approx(vl[best_epoch - 1], rel=1e-6)


def test_early_stopping_min_delta_mode_and_validation():
    es = EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    assert es.maximize

    class T:
        model = nn.Linear(1, 1)
        stop_training = False
        status = "running"

    t = T()
    es.on_epoch_end(t, 1, {"val_accuracy": 0.5})
    es.on_epoch_end(t, 2, {"val_accuracy": 0.53})  # < min_delta: no improvement
    assert t.stop_training and es.best == 0.5 and t.status == "stopped"
    with pytest.raises(ConfigError, match="train.patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ConfigError, match="train.mode"):
        EarlyStopping(mode="up")


def test_nan_guard_stops_a_diverging_run_names_a_layer_and_keeps_finite_weights(blobs, mlp):
    x, y, _, _ = blobs
    x = x * 50
    guard = NanGuard(check_every=1)
    t = Trainer(mlp(), optimizer="sgd", lr=1e6, callbacks=[guard])
    h = t.fit(x, y, epochs=5, batch_size=16)
    assert t.status == "diverged"
    assert t.divergence["layer"] in {n for n, _ in t.model.named_parameters()}
    assert "diverged" in t.divergence["message"] and t.divergence["layer"] in t.divergence["message"]
    assert len(h) == 1 and t.step <= t.steps_per_epoch
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert torch.isfinite(t.model(x)).all()


def test_nan_guard_checks_only_every_k_steps_and_does_not_write_diverged_checkpoints(
        blobs, mlp, tmp_path):
    x, y, _, _ = blobs
    ck = ModelCheckpoint(tmp_path, every_epochs=1)
    t = Trainer(mlp(), optimizer="sgd", lr=0.01, callbacks=[NanGuard(check_every=4), ck])
    t.fit(x, y, epochs=1, batch_size=16)
    good = (tmp_path / "last.pt").read_bytes()
    t2 = Trainer(t.model, optimizer="sgd", lr=1e12, callbacks=[NanGuard(check_every=4), ck])
    t2.fit(x * 100, y, epochs=3, batch_size=16)
    assert t2.status == "diverged" and (t2.divergence["step"] + 1) % 4 == 0
    assert (tmp_path / "last.pt").read_bytes() == good  # never overwritten, never deleted


def test_history_logger_writes_csv_and_json_each_epoch(blobs, mlp, tmp_path):
    x, y, xv, yv = blobs
    seen = []

    class Peek(Callback):
        order = 60  # after the logger

        def on_epoch_end(self, t, epoch, logs):
            seen.append(len(json.loads((tmp_path / "h.json").read_text())))

    t = Trainer(mlp(), callbacks=[HistoryLogger(tmp_path / "h.csv", tmp_path / "h.json"), Peek()])
    t.fit(x, y, epochs=3, validation_data=(xv, yv))
    assert seen == [1, 2, 3]
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert len(rows) == 3 and float(rows[2]["val_loss"]) == pytest.approx(t.history["val_loss"][2])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_progress_callback_prints_epoch_lines_and_quiet_prints_nothing(blobs, mlp):
    from rich.console import Console
    x, y, _, _ = blobs
    console = Console(record=True, width=200, force_terminal=False)
    Trainer(mlp(), callbacks=[ProgressCallback(console=console, refresh_every=2)]).fit(
        x, y, epochs=2)
    text = console.export_text()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "loss" in text
    quiet = ProgressCallback(quiet=True)
    Trainer(mlp(), callbacks=[quiet]).fit(x, y, epochs=1)
    assert quiet._progress is None and quiet.console is None


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals need the main thread")
def test_ctrl_c_finishes_the_step_saves_a_checkpoint_and_reraises(blobs, mlp, tmp_path):
    x, y, _, _ = blobs

    class CtrlC(Callback):
        def on_batch_start(self, t, step):
            if step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    t = Trainer(mlp(), callbacks=[CtrlC(), ModelCheckpoint(tmp_path, every_epochs=0)])
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        t.fit(x, y, epochs=3, batch_size=16)
    assert t.status == "interrupted" and t.step == 6  # the step in flight completed
    assert t.interrupt_signal == signal.SIGINT
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["batch_in_epoch"] == 6 and state["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before  # whatever was there, restored


def test_epoch_loss_is_nan_when_a_step_is_nan_without_a_guard(blobs, mlp):
    x, y, _, _ = blobs
    t = Trainer(mlp(), optimizer="sgd", lr=1e9)
    h = t.fit(x * 100, y, epochs=1, batch_size=16)
    assert not math.isfinite(h["loss"][0])


def test_nan_guard_names_the_layer_whose_gradient_is_not_finite(blobs, mlp):
    x, y, _, _ = blobs
    model = mlp()
    calls = {"n": 0}

    def poison(g):  # from the 5th step on, only the output kernel's gradient overflows
        calls["n"] += 1
        return g * float("inf") if calls["n"] >= 5 else g

    model[2].weight.register_hook(poison)
    t = Trainer(model, callbacks=[NanGuard(check_every=1)])
    before = {}

    class Keep(Callback):
        def on_batch_end(self, t, step):
            if step == 3:
                before.update({k: v.clone() for k, v in t.model.state_dict().items()})

    t.callbacks = type(t.callbacks)([*t.callbacks, Keep()])
    t.fit(x, y, epochs=2, batch_size=16)
    assert t.status == "diverged" and t.divergence["layer"] == "2.weight"
    assert t.divergence["step"] == 4  # the 5th step (0-based 4); its update was skipped
    for k, v in t.model.state_dict().items():  # weights after the last good step
        assert torch.equal(v, before[k])


def test_early_stopping_without_validation_monitors_the_training_loss(blobs, mlp):
    x, y, _, _ = blobs
    es = EarlyStopping(patience=1)
    with pytest.warns(RuntimeWarning, match="monitoring 'loss'"):
        Trainer(mlp(), callbacks=[es]).fit(x, y, epochs=2)
    assert es.best is not None and es.best_epoch >= 1


def test_trainer_state_dict_round_trip_in_process(blobs, mlp):
    x, y, xv, yv = blobs
    a = Trainer(mlp(dropout=0.2), optimizer="adam", lr=0.01, callbacks=[EarlyStopping()])
    a.fit(x, y, epochs=2, validation_data=(xv, yv))
    state = a.state_dict()
    a.fit(x, y, epochs=2, validation_data=(xv, yv))
    b = Trainer(mlp(dropout=0.2, seed=99), optimizer="adam", lr=0.01, callbacks=[EarlyStopping()])
    b.load_state_dict(state)
    b.fit(x, y, epochs=4, validation_data=(xv, yv))  # after a load, epochs is the total
    assert b.step == a.step and b.epoch == 4
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    strip = [{k: v for k, v in e.items() if k != "time"} for e in a.history]
    assert strip == [{k: v for k, v in e.items() if k != "time"} for e in b.history]


def test_nan_guard_catches_a_divergence_between_checks_at_the_epoch_end(blobs, mlp, tmp_path):
    x, y, _, _ = blobs
    ck = ModelCheckpoint(tmp_path, every_epochs=1)
    t = Trainer(mlp(), optimizer="sgd", lr=1e7,
                callbacks=[NanGuard(check_every=1000), ck])
    h = t.fit(x * 100, y, epochs=3, batch_size=16)
    assert t.status == "diverged" and len(h) == 1 and not math.isfinite(h["loss"][0])
    assert t.divergence["layer"] in {n for n, _ in t.model.named_parameters()}
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert not (tmp_path / "last.pt").exists()  # a diverged state is never checkpointed


def test_nan_guard_names_a_layer_when_only_the_epoch_loss_is_not_finite(mlp):
    # The epoch's loss overflowed between two checks while the last step's gradients are
    # finite: the guard itself names the layer with the largest gradient norm.
    from types import SimpleNamespace

    model = mlp()
    t = SimpleNamespace(model=model, device=torch.device("cpu"), last_loss=torch.tensor(1.0),
                        status="running", step=7, epoch=0, stop_training=False, divergence=None)
    guard = NanGuard(check_every=1000)
    guard.on_fit_start(t)
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    model[2].weight.grad.fill_(5.0)  # the largest norm: 5·√(3·16)
    guard.on_epoch_end(t, 1, {"loss": float("inf")})
    assert t.status == "diverged" and t.stop_training
    assert t.divergence["layer"] == "2.weight" and t.divergence["step"] == 6
    assert abs(t.divergence["grad_norm"] - 5.0 * math.sqrt(3 * 16)) < 1e-4
    assert "'2.weight'" in t.divergence["message"]
