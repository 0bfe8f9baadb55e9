"""SIGTERM is handled like Ctrl-C; a SIGINT ignored at start (nohup) stays ignored."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch
from torch import nn

from trainwell.train import Callback, ModelCheckpoint, Trainer

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals need the main thread")


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(128, 4, generator=g), torch.randint(0, 3, (128,), generator=g)


class _Send(Callback):
    def __init__(self, sig, at=3, times=1):
        self.sig, self.at, self.times, self.seen = sig, at, times, {}

    def on_batch_start(self, t, step):
        self.seen[step] = signal.getsignal(signal.SIGINT)
        if step == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.sig)


def test_sigterm_finishes_the_step_saves_and_reports_the_signal(tmp_path):
    x, y = _data()
    t = Trainer(nn.Sequential(nn.Linear(4, 3)), callbacks=[
        _Send(signal.SIGTERM), ModelCheckpoint(tmp_path, every_epochs=0)])
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        t.fit(x, y, epochs=3, batch_size=16)
    assert t.status == "interrupted" and t.interrupt_signal == signal.SIGTERM and t.step == 4
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigint_ignored_at_start_stays_ignored_and_sigterm_still_stops(tmp_path):
    x, y = _data()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup (restored by conftest)
    send = _Send(signal.SIGINT, at=2)
    t = Trainer(nn.Sequential(nn.Linear(4, 3)), callbacks=[send])
    t.fit(x, y, epochs=1, batch_size=16)  # the ignored Ctrl-C does not stop it
    assert t.status == "completed" and set(send.seen.values()) == {signal.SIG_IGN}
    t2 = Trainer(nn.Sequential(nn.Linear(4, 3)), callbacks=[
        _Send(signal.SIGTERM), ModelCheckpoint(tmp_path, every_epochs=0)])
    with pytest.raises(KeyboardInterrupt):
        t2.fit(x, y, epochs=2, batch_size=16)
    assert t2.status == "interrupted" and (tmp_path / "last.pt").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_second_signal_stops_at_once_and_writes_no_half_step_checkpoint(tmp_path):
    x, y = _data()
    ck = ModelCheckpoint(tmp_path, every_epochs=0, every_steps=2)
    t = Trainer(nn.Sequential(nn.Linear(4, 3)), callbacks=[_Send(signal.SIGINT, at=5, times=2),
                                                           ck])
    with pytest.raises(KeyboardInterrupt):
        t.fit(x, y, epochs=2, batch_size=16)
    # the last checkpoint is the periodic one of step 4, not a state from the middle of step 5
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 4


def test_divergence_names_the_layer_where_the_non_finite_value_first_appeared():
    from trainwell.train import NanGuard

    x, y = _data()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    with torch.no_grad():
        model[2].weight[0, 0] = 1e38  # the second linear layer overflows to inf
    t = Trainer(model, optimizer="sgd", lr=0.01, callbacks=[NanGuard(check_every=1)])
    t.fit(x * 1e3, y, epochs=1, batch_size=16)
    assert t.status == "diverged" and t.divergence["layer"] == "2.weight"
    assert "first NaN/Inf appeared in the output of the layer holding '2.weight'" in t.divergence["message"]
    assert "exploded" not in t.divergence["message"]
