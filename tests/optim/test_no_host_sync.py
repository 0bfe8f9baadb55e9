"""Clipping, penalties and schedule application never read a tensor back to the host.

``.item()`` / ``float(tensor)`` / ``.tolist()`` go through ``aten::_local_scalar_dense``; a
dispatch mode records every op so the test fails if one sneaks into the per-step path.
"""

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from trainwell.optim import (
    apply_schedule,
    clip_gradients,
    kernel_penalty,
    make_optimizer,
    make_schedule,
)


class OpRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def step_pieces():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 10
    return model


def test_recorder_sees_item():
    with OpRecorder() as rec:
        torch.ones(1).item()
    assert any("_local_scalar_dense" in op for op in rec.ops)


def test_per_step_helpers_do_not_sync():
    model = step_pieces()
    opt = make_optimizer(model, "nadam", lr=0.01)
    sched = make_schedule("onecycle", base_lr=0.01, steps_per_epoch=10, epochs=2)
    with OpRecorder() as rec:
        clip_gradients(model, clip_value=5.0, clip_norm=1.0, clip_global_norm=0.5)
        kernel_penalty(model, l1=1e-3, l2=1e-3).backward()
        apply_schedule(opt, sched, 7)
    # (torch's own Adam-family step reads its step counter, which torch keeps on the CPU.)
    assert rec.ops, "the recorder saw no ops"
    assert not [op for op in rec.ops if "_local_scalar_dense" in op]
