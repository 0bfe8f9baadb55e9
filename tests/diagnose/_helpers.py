"""Helpers of the diagnosis tests: tiny synthetic data and a minimal training loop."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn


class FakeTrainer:
    """Just what the probe reads from a trainer."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.step = 0


def synthetic(n: int = 512, d: int = 16, k: int = 4, seed: int = 0):
    """Standardized Gaussian features, labels from a random linear teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x @ torch.randn(d, k, generator=g)).argmax(1)
    return x, y


def run_loop(model: nn.Module, probe, *, steps: int, lr: float = 0.01, bs: int = 64,
             x=None, y=None, clip: float = 0.0):
    """Plain SGD loop calling the probe's events in the trainer's order."""
    if x is None:
        x, y = synthetic(d=model_in_features(model))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    t = FakeTrainer(model)
    probe.on_fit_start(t)
    for s in range(steps):
        i = (s * bs) % len(x)
        xb, yb = x[i:i + bs], y[i:i + bs]
        probe.on_batch_start(t, s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        probe.on_after_backward(t, s)
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        t.step = s + 1
        probe.on_batch_end(t, s)
    probe.on_fit_end(t)
    return probe


def model_in_features(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
    raise ValueError("no Linear layer")


def load_helpers():
    """This module, loaded by path (the suite runs with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location("diagnose_test_helpers", Path(__file__))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
