"""Fault injection: a real `trainwell fit` is SIGKILLed at random moments — while a file is
written, between the two renames of a checkpoint, mid-epoch, during validation — and
`trainwell fit --resume RUN` must finish with exactly the weights and history of a run that
was never interrupted.

A few points run with the suite; ``pytest -m nightly`` draws many more.
"""

from __future__ import annotations

import importlib.util as _ilu
import json
import random
import subprocess
import sys
from pathlib import Path
from pathlib import Path as _Path

import pytest
from safetensors.torch import load_file

_spec = _ilu.spec_from_file_location("hardening_helpers", _Path(__file__).with_name("_helpers.py"))
_h = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(_h)
env = _h.env
only_run = _h.only_run
run_trainwell = _h.run_trainwell
write_recipe = _h.write_recipe

WORKER = Path(__file__).with_name("fault_worker.py")
EPOCHS, EVERY_STEPS = 3, 4  # 200 training examples, batch 16: 13 steps per epoch
LIMITS = {"write": 30, "rename": 30, "batch": 39, "validation": EPOCHS}


def _points(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    kinds = sorted(LIMITS)
    return [(kinds[i % len(kinds)], rng.randint(1, LIMITS[kinds[i % len(kinds)]]))
            for i in range(n)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(d, epochs=EPOCHS, every_steps=EVERY_STEPS)
    proc = run_trainwell("fit", str(recipe), "--out", str(d / "runs"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return recipe, only_run(d / "runs")


def _history(run: Path) -> list[dict]:
    rows = json.loads((run / "history.json").read_text())
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def _kill_and_resume(reference, tmp_path, kind, n):
    recipe, ref = reference
    out = tmp_path / "runs"
    killed = subprocess.run([sys.executable, str(WORKER), kind, str(n), "--", "fit", str(recipe),
                             "--out", str(out), "--quiet"], capture_output=True, text=True,
                            env=env(), timeout=120)
    assert "Traceback" not in killed.stderr, killed.stderr
    run = only_run(out)
    if killed.returncode == 0:  # the N-th moment never came: a complete run
        assert _history(run) == _history(ref)
        return
    assert killed.returncode == -9, killed.stderr
    resumed = run_trainwell("fit", "--resume", str(run), "--quiet")
    if resumed.returncode == 2 and ("checkpoint" in resumed.stderr
                                    or "recipe.toml" in resumed.stderr):
        # killed before the first checkpoint: one clear error, nothing to resume
        assert resumed.stderr.count("error:") == 1 and "Traceback" not in resumed.stderr
        return
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert _history(run) == _history(ref)
    a, b = load_file(str(run / "model" / "model.safetensors")), load_file(
        str(ref / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), f"{kind} {n}"
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert not list(run.rglob("*.tmp")), "temporary files left behind"


@pytest.mark.parametrize("kind, n", _points(3, seed=15))
def test_sigkill_then_resume_is_bit_identical(reference, tmp_path, kind, n):
    _kill_and_resume(reference, tmp_path, kind, n)


@pytest.mark.nightly
@pytest.mark.parametrize("kind, n", _points(40, seed=2026))
def test_sigkill_then_resume_is_bit_identical_many_points(reference, tmp_path, kind, n):
    _kill_and_resume(reference, tmp_path, kind, n)
