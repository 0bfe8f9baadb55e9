"""Worker for the resume tests: runs in its own process (``python resume_worker.py ...``).

phase ``first``: for every config, an uninterrupted run (saved to ``<out>/<cfg>/full.pt``) and
runs halted at several points right after a checkpoint was written (the checkpoint dir
``<out>/<cfg>/<halt>/`` and the canary count at the halt go to ``halt.pt``).
phase ``resume``: a new process resumes each halted run from its checkpoint directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

from trainwell.train import Callback, EarlyStopping, ModelCheckpoint, NanGuard, Trainer

EPOCHS, N, BATCH = 5, 96, 16  # 6 steps per epoch, 30 in all
HALTS = {"mid_epoch": ("step", 9), "last_batch": ("step", 12), "epoch_end": ("epoch", 2)}


class Canary(nn.Module):
    """Counts its calls in training mode: proves how many batches really ran."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        return x


class Halted(Exception):
    pass


class Halt(Callback):
    order = 1000  # after ModelCheckpoint wrote its file

    def __init__(self, kind, at):
        self.kind, self.at = kind, at

    def on_batch_end(self, t, step):
        if self.kind == "step" and t.step == self.at:
            raise Halted

    def on_epoch_end(self, t, epoch, logs):
        if self.kind == "epoch" and epoch == self.at:
            raise Halted


def data():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N + 32, 5, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x[:N], y[:N], x[N:], y[N:]


def build(cfg, extra=(), ckpt=None):
    torch.manual_seed(7)
    canary = Canary()
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Dropout(0.2), canary, nn.Linear(12, 3))
    params = {"exponential": {"decay_steps": 10}, "performance": {"patience": 1, "factor": 0.5, "min_delta": 0.1},
              "onecycle": {}}[cfg["schedule"]]
    cbs = [EarlyStopping(patience=2, min_delta=0.1), NanGuard(check_every=5), *extra]
    if ckpt is not None:
        cbs.append(ModelCheckpoint(ckpt, every_epochs=1, every_steps=3))
    t = Trainer(model, optimizer=cfg["optimizer"], lr=cfg["lr"], schedule=cfg["schedule"],
                schedule_params=params, seed=3, callbacks=cbs)
    return t, canary


def result(t, canary, **more):
    return {"model": t.model.state_dict(), "history": t.history.to_list(), "calls": canary.calls,
            "step": t.step, "status": t.status, **more}


def first(cfgs, out):
    x, y, xv, yv = data()
    for name, cfg in cfgs.items():
        t, canary = build(cfg)
        t.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv))
        (out / name).mkdir(parents=True, exist_ok=True)
        torch.save(result(t, canary), out / name / "full.pt")
        for halt, (kind, at) in HALTS.items():
            d = out / name / halt
            t, canary = build(cfg, [Halt(kind, at)], ckpt=d)
            try:
                t.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv))
            except Halted:
                pass
            torch.save({"calls": canary.calls, "step": t.step}, d / "halt.pt")


def resume(cfgs, out):
    x, y, xv, yv = data()
    for name, cfg in cfgs.items():
        for halt in HALTS:
            d = out / name / halt
            t, canary = build(cfg)
            t.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_data=(xv, yv),
                  resume_from=d)
            torch.save(result(t, canary), d / "resumed.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest and deterministic
    phase, out, cfgs = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    (first if phase == "first" else resume)(cfgs, out)
