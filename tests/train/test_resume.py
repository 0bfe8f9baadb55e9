"""Resuming is exact: a run halted mid-epoch, at its last batch or at an epoch end, then
resumed in a NEW process, ends with the same weights, history and number of batches."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("resume_worker.py")
OPTIMIZERS = {"sgd": 0.2, "momentum": 0.05, "adam": 0.01, "nadam": 0.01}
SCHEDULES = ("exponential", "performance", "onecycle")
# Every optimizer and every schedule appears (6 pairs instead of the 12 of the full grid).
PAIRS = [("sgd", "exponential"), ("sgd", "onecycle"), ("momentum", "performance"),
         ("adam", "onecycle"), ("adam", "performance"), ("nadam", "exponential")]
CONFIGS = {f"{o}-{s}": {"optimizer": o, "lr": OPTIMIZERS[o], "schedule": s} for o, s in PAIRS}
assert {o for o, _ in PAIRS} == set(OPTIMIZERS) and {s for _, s in PAIRS} == set(SCHEDULES)
HALTS = ("mid_epoch", "last_batch", "epoch_end")


def _run(phase, out):
    proc = subprocess.run([sys.executable, str(WORKER), phase, str(out), json.dumps(CONFIGS)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    _run("first", out)
    _run("resume", out)  # a new process: nothing survives but the checkpoint files
    return out


def _strip_time(history):
    return [{k: v for k, v in e.items() if k != "time"} for e in history]


@pytest.mark.parametrize("halt", HALTS)
@pytest.mark.parametrize("cfg", list(CONFIGS))
def test_resumed_run_equals_uninterrupted_run(runs, cfg, halt):
    full = torch.load(runs / cfg / "full.pt", weights_only=True)
    halted = torch.load(runs / cfg / halt / "halt.pt", weights_only=True)
    resumed = torch.load(runs / cfg / halt / "resumed.pt", weights_only=True)
    assert 0 < halted["step"] < full["step"] or halt == "epoch_end"
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    assert _strip_time(resumed["history"]) == _strip_time(full["history"])
    assert resumed["status"] == full["status"]
    # Canary: every batch ran exactly once across the halt and the resume.
    assert halted["calls"] + resumed["calls"] == full["calls"] == full["step"]


def test_early_stopping_stopped_some_runs_before_the_last_epoch(runs):
    fulls = [torch.load(runs / c / "full.pt", weights_only=True) for c in CONFIGS]
    assert {f["status"] for f in fulls} <= {"completed", "stopped"}
    assert any(len(f["history"]) < 5 for f in fulls)  # so resume across a stop is covered
