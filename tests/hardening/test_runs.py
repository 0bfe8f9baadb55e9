"""Run directories stay usable: locking, atomic recipe replacement, SIGTERM, a full disk,
damaged derived files, and honest times and checkpoint steps after interruptions."""

from __future__ import annotations

import importlib.util as _ilu
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from pathlib import Path as _Path

import pytest
from typer.testing import CliRunner

from trainwell.cli import app
from trainwell.config import load_recipe
from trainwell.runlock import RunLock
from trainwell.train import Callback
from trainwell.workflows.run import fit_recipe

_spec = _ilu.spec_from_file_location("hardening_helpers", _Path(__file__).with_name("_helpers.py"))
_h = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(_h)
env = _h.env
only_run = _h.only_run
trainwell_cmd = _h.trainwell_cmd
write_recipe = _h.write_recipe

WORKER = Path(__file__).with_name("fault_worker.py")


@pytest.fixture
def finished(tmp_path):
    recipe = write_recipe(tmp_path, epochs=2)
    res = CliRunner().invoke(app, ["fit", str(recipe), "--out", str(tmp_path / "runs"),
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    return recipe, only_run(tmp_path / "runs")


# ----------------------------------------------------------------- 6. lock
def test_a_run_in_use_is_refused_and_a_stale_lock_is_taken_over(finished):
    _, run = finished
    holder = RunLock(run).acquire()  # another open file: flock conflicts like another process
    try:
        res = CliRunner().invoke(app, ["fit", "--resume", str(run), "--set", "train.epochs=3",
                                       "--quiet"])
        assert res.exit_code == 2, res.output
        assert f"{run} is in use by process {os.getpid()}" in res.output
        assert "Traceback" not in res.output
    finally:
        holder.release()
    (run / ".lock").write_text("999999999\n")  # left by a process that no longer runs
    (run / "checkpoints" / ".last.pt.999999999.0badf00d.tmp").write_bytes(b"partial")
    res = CliRunner().invoke(app, ["fit", "--resume", str(run), "--set", "train.epochs=3",
                                   "--force-resume", "--quiet"])
    assert res.exit_code == 0, res.output
    assert not list(run.rglob("*.tmp"))  # the dead process's temporary file was removed


# ----------------------------------------------------------------- 5. force-resume
@pytest.mark.parametrize("n", [1, 2])
def test_a_kill_during_force_resume_leaves_a_readable_recipe(finished, n):
    _, run = finished
    killed = subprocess.run([sys.executable, str(WORKER), "rename", str(n), "--", "fit",
                             "--resume", str(run), "--force-resume", "--set",
                             "optimizer.lr=0.02", "--set", "train.epochs=3", "--quiet"],
                            capture_output=True, text=True, env=env(), timeout=120)
    assert killed.returncode == -9, killed.stderr
    recipe = load_recipe(run / "recipe.toml")  # old or new, never missing
    assert recipe.optimizer.lr in (0.01, 0.02)


# ----------------------------------------------------------------- 9. damaged files
def test_a_damaged_summary_does_not_block_the_run(finished):
    _, run = finished
    (run / "summary.json").write_text("{ not json")
    res = CliRunner().invoke(app, ["evaluate", str(run)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["fit", "--resume", str(run), "--set", "train.epochs=3",
                                   "--force-resume", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3


def test_an_empty_recipe_is_not_read_as_the_defaults(finished):
    _, run = finished
    (run / "recipe.toml").write_text("")
    res = CliRunner().invoke(app, ["evaluate", str(run)])
    assert res.exit_code == 2 and "recipe.toml is empty" in res.output, res.output


# ----------------------------------------------------------------- 8. disk full
def test_disk_full_during_fit_is_one_error_and_leaves_no_partial_file(tmp_path):
    recipe = write_recipe(tmp_path, epochs=2)

    def limit():  # what a full disk does to a write, for this process only
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    out = tmp_path / "runs"
    proc = subprocess.run(trainwell_cmd("fit", str(recipe), "--out", str(out), "--quiet"),
                          capture_output=True, text=True, env=env(), timeout=120,
                          preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert ".pt: it needs about" in proc.stderr and "free" in proc.stderr
    run = only_run(out)
    assert not list(run.rglob("*.tmp"))


# ----------------------------------------------------------------- 7. SIGTERM, nohup
def _wait_for(path: Path, proc, timeout=60.0):
    end = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end
        time.sleep(0.05)


def test_sigterm_stops_cleanly_with_exit_143_and_ignored_ctrl_c_stays_ignored(tmp_path):
    recipe = write_recipe(tmp_path, epochs=400)
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        trainwell_cmd("fit", str(recipe), "--out", str(out), "--quiet", "--set",
                      "train.early_stopping=false"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as under nohup
    try:
        _wait_for(out, proc)
        run = only_run(out)
        _wait_for(run / "checkpoints" / "last.pt", proc)
        proc.send_signal(signal.SIGINT)  # ignored, as the parent asked
        time.sleep(0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM: resume with" in err and "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGTERM"
    assert summary["checkpoint"]["step"] == summary["steps"]


# ----------------------------------------------------------------- 14. honest metadata
class _Slow(Callback):
    """Each step takes 20 ms more; a real SIGINT (twice with ``hard``) at step ``at``."""

    def __init__(self, at=None, hard=False):
        self.at, self.hard = at, hard

    def on_batch_end(self, t, step):
        time.sleep(0.02)
        if self.at is not None and t.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            if self.hard:
                os.kill(os.getpid(), signal.SIGINT)


def test_epoch_times_and_total_time_count_every_part_of_a_resumed_run(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, epochs=2, every_steps=4))
    res = fit_recipe(recipe, out=tmp_path / "runs", quiet=True, callbacks=[_Slow(at=11)],
                     interrupt="return")
    assert res.summary["status"] == "interrupted"
    done = fit_recipe(recipe, quiet=True, resume=res.run_dir, callbacks=[_Slow()])
    times = [r["time"] for r in json.loads((res.run_dir / "history.json").read_text())]
    assert len(times) == 2 and min(times) >= 13 * 0.02  # 13 steps of ≥ 20 ms each epoch
    assert done.summary["total_time"] >= sum(times)
    assert done.summary["median_epoch_time"] >= 13 * 0.02


def test_after_a_double_ctrl_c_the_summary_names_the_checkpoint_on_disk(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, epochs=2, every_steps=4))
    res = fit_recipe(recipe, out=tmp_path / "runs", quiet=True,
                     callbacks=[_Slow(at=10, hard=True)], interrupt="return")
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["checkpoint"] == {"file": "checkpoints/last.pt", "step": 8, "epoch": 0}
    assert summary["steps"] == 8  # the model and summary are those of that checkpoint
