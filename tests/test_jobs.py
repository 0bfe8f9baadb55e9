"""``compare --jobs N`` and ``tune --jobs N``: runs trained in parallel processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainwell.config import Recipe, apply_overrides
from trainwell.errors import ConfigError
from trainwell.studies.compare import grid_variants, parse_vary, run_comparison

FAST = ["model.hidden=[16]", "train.epochs=2", "train.batch_size=32", "train.device=cpu",
        "optimizer.name=sgd", "optimizer.lr=0.05", "schedule.name=constant",
        "train.checkpoint_every_epochs=0", "train.early_stopping=false"]


def _variants(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 3))
    x = rng.normal(size=(300, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x @ w).argmax(1))
    base = apply_overrides(Recipe(name="tiny"), [*FAST, f'data.dataset="{tmp_path / "d.npz"}"',
                                                  "data.validation=60"])
    return grid_variants([("tiny", base)], parse_vary(["optimizer.lr=0.05,0.1"]))


def test_parallel_runs_give_the_serial_numbers(tmp_path):
    variants = _variants(tmp_path)
    serial = run_comparison(variants, seeds=[0], out=tmp_path / "serial", quiet=True)
    parallel = run_comparison(variants, seeds=[0], out=tmp_path / "parallel", quiet=True,
                              jobs=2)
    assert [o.variant for o in parallel.outcomes] == [o.variant for o in serial.outcomes]
    for a, b in zip(serial.outcomes, parallel.outcomes, strict=True):
        assert b.best == a.best and b.best_epoch == a.best_epoch
        assert [e["loss"] for e in b.epochs] == [e["loss"] for e in a.epochs]
        assert str(tmp_path / "parallel") in b.run_dir
    assert (parallel.dir / "report.html").is_file()


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_bad_jobs_is_one_error_before_any_folder(tmp_path, jobs):
    with pytest.raises(ConfigError) as e:
        run_comparison(_variants(tmp_path), out=tmp_path / "never", jobs=jobs)
    assert e.value.field == "--jobs"
    assert not (tmp_path / "never").exists()


def test_cli_compare_jobs_zero_is_refused(tmp_path):
    from typer.testing import CliRunner

    from trainwell.cli import app

    res = CliRunner().invoke(app, ["compare", "default", "--vary", "optimizer.lr=0.1,0.2",
                                   "--jobs", "0", "--out", str(tmp_path / "never")])
    assert res.exit_code == 2 and "--jobs" in res.output
    assert not (tmp_path / "never").exists()


def test_tune_jobs_runs_the_trials_in_two_processes_of_one_study(tmp_path):
    pytest.importorskip("optuna")
    import torch

    from trainwell.data.splits import Splits
    from trainwell.studies.tune import run_study

    g = torch.Generator().manual_seed(0)
    x, xv = torch.randn(128, 8, generator=g), torch.randn(64, 8, generator=g)
    w = torch.randn(8, 3, generator=g)
    splits = Splits(x, (x @ w).argmax(1), xv, (xv @ w).argmax(1), xv, (xv @ w).argmax(1),
                    class_names=None, input_shape=(8,), n_outputs=3, task="multiclass",
                    name="synthetic")
    base = apply_overrides(Recipe(name="tiny"), FAST)
    space = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}
    r = run_study(base, space, n_trials=2, out=tmp_path, splits=splits, jobs=2)
    trials = r.study.trials
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    dirs = {t.user_attrs["run_dir"] for t in trials}
    assert len(dirs) == 2 and all(Path(d).is_dir() for d in dirs)
    # two sampler seeds: the two processes did not draw the same learning rate
    assert trials[0].params["optimizer.lr"] != trials[1].params["optimizer.lr"]
    assert r.best_recipe_path is not None and r.best_recipe_path.is_file()
