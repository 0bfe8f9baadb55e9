"""`trainwell lr-find`, `compare` and `tune` end to end on a tiny synthetic dataset."""

from __future__ import annotations

import json

import pytest

from trainwell.cli import app
from trainwell.recipe import load_recipe

WIDE = {"COLUMNS": "250"}


def test_lr_find_prints_the_suggestion_and_writes_the_plot(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["lr-find", str(tiny_dir / "tiny.toml"), "--steps", "60",
                                 "--start-lr", "1e-5", "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "suggested max learning rate" in result.output
    assert "one tenth of the learning rate" in result.output
    (folder,) = list(tmp_path.iterdir())
    data = json.loads((folder / "lr_find.json").read_text())
    assert f"{data['suggestion']:.3g}" in result.output
    assert (folder / "plots" / "lr_find.png").stat().st_size > 5000


def test_lr_find_refuses_an_unknown_rule(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["lr-find", str(tiny_dir / "tiny.toml"), "--rule", "valley",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--rule" in result.output


def test_compare_grid_prints_every_variant(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, [
        "compare", str(tiny_dir / "tiny.toml"), "--vary", "model.batch_norm=none,after",
        "--vary", "model.activation=relu,elu", "--set", "train.epochs=1", "--quiet",
        "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    for bn in ("none", "after"):
        for act in ("relu", "elu"):
            assert f"batch_norm={bn},activation={act}" in result.output
    (folder,) = list(tmp_path.iterdir())
    assert (folder / "report.html").is_file()
    assert len(list((folder / "runs").iterdir())) == 4


@pytest.mark.parametrize("args, message", [
    (["--vary", "model.activaton=relu,elu"], "activaton"),
    (["--vary", "model.batch_norm=none,sideways"], "sideways"),
    (["--vary", "model.activation"], "--vary"),
    ([], "--vary"),
])
def test_compare_bad_vary_fails_with_one_line_before_training(runner, tiny_dir, tmp_path,
                                                             args, message):
    result = runner.invoke(app, ["compare", str(tiny_dir / "tiny.toml"), *args,
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert not list(tmp_path.iterdir())


def test_tune_runs_resumes_and_writes_a_best_recipe(runner, tiny_dir, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('"optimizer.lr" = {low = 1e-3, high = 0.3, log = true}\n'
                     '"model.activation" = ["relu", "elu"]\n')
    args = ["tune", str(tiny_dir / "tiny.toml"), "--space", str(space), "--trials", "2",
            "--set", "train.epochs=1", "--out", str(tmp_path / "out")]
    first = runner.invoke(app, args, env=WIDE)
    assert first.exit_code == 0, first.output
    assert "best trials of tiny" in first.output and "2 complete" in first.output
    second = runner.invoke(app, args[:5] + ["1"] + args[6:], env=WIDE)
    assert second.exit_code == 0, second.output
    assert "3 complete" in second.output
    best = load_recipe(tmp_path / "out" / "tune-tiny" / "best_recipe.toml")
    assert best.model.activation in ("relu", "elu") and 1e-3 <= best.optimizer.lr <= 0.3


def test_tune_bad_space_lists_the_valid_fields(runner, tiny_dir, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('"optimizer.learning_rate" = {low = 1e-3, high = 0.3}\n')
    result = runner.invoke(app, ["tune", str(tiny_dir / "tiny.toml"), "--space", str(space),
                                 "--trials", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "optimizer.learning_rate" in result.output and "optimizer.lr" in result.output
    assert not (tmp_path / "out").exists()


def test_compare_spec_with_vary_keeps_each_variant_settings(runner, tiny_dir, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'name = "mini"\nseeds = [3]\nset = ["train.epochs=1"]\n'
                    f'[[variants]]\nname = "plain"\nrecipe = "{(tiny_dir / "tiny.toml").as_posix()}"\n'
                    f'mc_samples = 3\n')
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", "--spec", str(spec), "--vary",
                                 "model.activation=relu,elu", "--quiet", "--out", str(out)],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    (folder,) = list(out.iterdir())
    data = json.loads((folder / "comparison.json").read_text())
    assert [r["variant"] for r in data["rows"]] == ["plain,activation=relu",
                                                    "plain,activation=elu"]
    assert data["seeds"] == [3] and all(r["mc_mean"] is not None for r in data["rows"])
    assert all(len(run["epochs"]) == 1 for run in data["runs"])
    assert "without MC" in result.output
