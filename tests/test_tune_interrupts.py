"""tune survives what users do to it: Ctrl-C mid-trial keeps the finished trials and the best
recipe; a trial whose process was killed does not stay RUNNING forever."""

import importlib.util
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                reason="needs optuna (pip install 'trainwell[tune]')")

from trainwell.recipe import Recipe, apply_overrides  # noqa: E402
from trainwell.studies.tune import run_study  # noqa: E402

FAST = ["data.standardize=false", "train.epochs=2", "train.batch_size=32", "train.device=cpu",
        "schedule.name=constant", "train.checkpoint_every_epochs=0",
        "train.early_stopping=false"]
SPACE = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}


def _splits():
    from tests.test_tune import _splits as make

    return make()


def test_ctrl_c_in_a_trial_keeps_finished_trials_and_writes_the_best_recipe(tmp_path, monkeypatch):
    import trainwell.studies.tune as tune

    base = apply_overrides(Recipe(name="tiny"), FAST)
    real = tune.PruningCallback
    calls = {"n": 0}

    class CtrlCInSecondTrial(real):
        def on_epoch_end(self, t, epoch, logs):
            super().on_epoch_end(t, epoch, logs)
            calls["n"] += 1
            if calls["n"] == 3:  # Ctrl-C during the second trial
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(tune, "PruningCallback", CtrlCInSecondTrial)
    result = run_study(base, SPACE, n_trials=4, out=tmp_path, splits=_splits(), seed=0)
    assert result.interrupted
    states = [t.state.name for t in result.study.trials]
    assert states[0] == "COMPLETE" and len(states) == 2  # no trial started after the stop
    assert result.best_recipe_path is not None and result.best_recipe_path.is_file()


def test_a_trial_left_running_by_a_dead_process_is_marked_failed_on_reopen(tmp_path):
    import optuna

    from trainwell.studies.tune_trials import record_owner

    base = apply_overrides(Recipe(name="tiny"), FAST)
    folder = tmp_path / "tune-tiny"
    folder.mkdir()
    storage = f"sqlite:///{folder / 'study.db'}"
    first = run_study(base, SPACE, n_trials=1, out=tmp_path, splits=_splits(), seed=0)
    study = optuna.load_study(study_name="tiny", storage=first.storage)
    orphan = study.ask()
    record_owner(orphan)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan.set_user_attr("pid", int(dead.stdout))  # the process that ran it is gone
    assert storage and orphan.number == 1
    again = run_study(base, SPACE, n_trials=1, out=tmp_path, splits=_splits(), seed=0)
    states = {t.number: t.state.name for t in again.study.trials}
    assert states[1] == "FAIL" and states[2] == "COMPLETE"
    assert any("trial 1" in n and "marked failed" in n for n in again.notes)
