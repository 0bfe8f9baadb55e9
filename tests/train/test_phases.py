"""Two-phase fine-tuning is one fit with an Unfreeze callback: one loop, one history."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.nn.reuse import freeze
from trainwell.train import Callback, EarlyStopping, NanGuard, Trainer, Unfreeze


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(6, 8), nn.ReLU()),
                         nn.Sequential(nn.Linear(8, 8), nn.ReLU()), nn.Linear(8, 2))


def test_unfreeze_switches_optimizer_lr_and_phase_within_one_run():
    x, y = _data()
    model = _net()
    freeze(model)
    seen = []

    class Spy(Callback):
        def on_epoch_start(self, t, epoch):
            seen.append((epoch, model[0][0].weight.requires_grad, id(t.optimizer),
                         t.optimizer.param_groups[0]["lr"],
                         sum(len(g["params"]) for g in t.optimizer.param_groups)))

    late = EarlyStopping(monitor="loss", patience=50)
    t = Trainer(model, optimizer="momentum", lr=0.1,
                callbacks=[Spy(), NanGuard(check_every=1),
                           Unfreeze(2, lr_factor=0.1, seed=7, callbacks=[late])],
                schedule="exponential", schedule_params={"decay_steps": 6}, device="cpu")
    h = t.fit(x, y, epochs=4, batch_size=32)
    assert [r["phase"] for r in h.epochs] == ["frozen", "frozen", "unfrozen", "unfrozen"]
    assert [r["steps"] for r in h.epochs] == [3, 6, 9, 12]          # one step counter
    assert [s[1] for s in seen] == [False, False, True, True]
    assert seen[0][2] == seen[1][2] != seen[2][2] == seen[3][2]      # a new optimizer …
    assert seen[2][4] == 6                                           # … over the trainable
    # the schedule starts again at the switch, from lr × lr_factor
    assert seen[2][3] == pytest.approx(0.01) and h["lr"][2] == pytest.approx(0.01 * 0.1 ** (2 / 6))
    assert h["lr"][1] == pytest.approx(0.1 * 0.1 ** (5 / 6))
    assert late.best_epoch in (3, 4) and late.wait <= 1              # joined for phase 2 only
    guard = next(cb for cb in t.callbacks if isinstance(cb, NanGuard))
    assert len(guard._params) == 6                                  # watches the new layers


def test_fine_tune_is_one_trainer_run():
    from trainwell.workflows.transfer import fine_tune_trainers

    x, y = _data()
    model = _net()
    result = fine_tune_trainers(model, x, y, frozen_epochs=1, epochs=3, lr=0.05,
                                lr_factor=0.5, device="cpu", batch_size=32, task="multiclass")
    (trainer,) = result.trainers
    assert trainer.history is result.history and trainer.step == 9
    assert [r["phase"] for r in result.history.epochs] == ["frozen", "unfrozen", "unfrozen"]
    assert result.phase_switch_epoch == 1
