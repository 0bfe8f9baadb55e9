"""The one training step: what a callback can do to it, and that it is the only update body."""

from __future__ import annotations

import torch

from trainwell.train import Callback, CancelStep, Trainer


def test_cancel_step_skips_the_update_and_the_schedule_but_counts_the_batch(blobs, mlp):
    x, y, _, _ = blobs
    seen, weights, lrs = [], {}, {}

    class CancelSecond(Callback):
        order = -1

        def on_batch_start(self, t, step):
            weights[step] = [p.detach().clone() for p in t.model.parameters()]
            lrs[step] = t.optimizer.param_groups[0]["lr"]

        def on_after_backward(self, t, step):
            if step == 1:
                raise CancelStep

    class Sees(Callback):  # a later callback still sees the gradients of a cancelled step
        def on_after_backward(self, t, step):
            seen.append(step)

    t = Trainer(mlp(), lr=0.1, schedule="exponential", schedule_params={"decay_steps": 2},
                callbacks=[CancelSecond(), Sees()], device="cpu")
    h = t.fit(x, y, epochs=1, batch_size=60, shuffle=False)  # 3 steps
    assert seen == [0, 1, 2] and t.train_step.cancelled_steps == 1
    for a, b in zip(weights[1], weights[2], strict=True):   # step 1 changed nothing
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(weights[0], weights[1], strict=True))
    assert lrs[2] == lrs[1] != lrs[0]                        # nor advanced the schedule
    assert h["steps"] == [3] and t.status == "completed"


def test_nan_guard_cancels_through_the_signal_not_a_status_string(blobs, mlp):
    x, y, _, _ = blobs
    model = mlp()

    class Poison(Callback):
        order = -200   # before NanGuard

        def on_after_backward(self, t, step):
            if step == 3:
                next(t.model.parameters()).grad.fill_(float("nan"))

    from trainwell.train import NanGuard

    t = Trainer(model, lr=0.1, callbacks=[Poison(), NanGuard(check_every=1)], device="cpu")
    t.fit(x, y, epochs=2, batch_size=30)
    assert t.status == "diverged" and t.train_step.cancelled_steps == 1
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_one_update_body_in_the_source():
    """Fit, compile, the LR finder, pretraining and fine-tuning all train through TrainStep:
    no other module calls backward or an optimizer's step."""
    import re
    from pathlib import Path

    import trainwell

    root = Path(trainwell.__file__).parent
    calls = re.compile(r"\.backward\(|\b(opt|optimizer)\.step\(")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if calls.search(p.read_text(encoding="utf-8")))
    assert found == ["train/precision.py", "train/step.py"]
