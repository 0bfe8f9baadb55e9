"""`trainwell advise`: the printed advice, --json, --try through compare, and bad run folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trainwell.cli import app


@pytest.fixture(scope="module")
def overfit_run(tiny_dir, tmp_path_factory) -> Path:
    """The tiny recipe with a big network, no dropout and a small training set: overfits."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("advise_runs")
    res = CliRunner().invoke(app, [
        "fit", str(tiny_dir / "tiny.toml"), "--out", str(out), "--quiet",
        "--set", "model.hidden=[128, 128]", "--set", "regularization.dropout=0.0",
        "--set", "schedule.name=constant", "--set", "optimizer.name=adam",
        "--set", "optimizer.lr=0.01", "--set", "train.epochs=25", "--set", "data.train_limit=80",
        "--set", "train.early_stopping=false", "--set", "train.checkpoint_every_epochs=0"])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def test_advise_prints_findings_with_evidence_and_proposals_as_set_lines(runner, overfit_run):
    res = runner.invoke(app, ["advise", str(overfit_run), "--probe-steps", "20"])
    assert res.exit_code == 0, res.output
    assert "1. Overfitting — confidence" in res.output
    assert "above its minimum" in res.output
    assert "--set train.early_stopping=true" in res.output      # Table 11-3 comes first
    assert "--set regularization.dropout=0.2" in res.output
    assert "+ regularization.dropout = 0.2" in res.output
    assert "the chapter: dropout 10–50 %" in res.output


def test_advise_json_is_the_same_advice_as_data(runner, overfit_run):
    res = runner.invoke(app, ["advise", str(overfit_run), "--json", "--probe-steps", "20"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["findings"][0]["key"] == "overfitting"
    assert data["findings"][0]["evidence"] and 0 < data["findings"][0]["confidence"] <= 1
    assert 1 <= len(data["proposals"]) <= 3
    assert data["proposals"][0]["sets"] == ["train.early_stopping=true"]
    p = next(p for p in data["proposals"] if p["sets"] == ["regularization.dropout=0.2"])
    assert p["diff"] == [{"field": "regularization.dropout", "old": 0.0, "new": 0.2}]
    assert data["diagnosis_source"] == "probe"


def test_try_trains_every_proposal_with_the_same_seeds_and_writes_the_best(runner, overfit_run,
                                                                           tmp_path):
    res = runner.invoke(app, ["advise", str(overfit_run), "--try", "--seeds", "0,1",
                              "--set", "train.epochs=4", "--probe-steps", "20",
                              "--out", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    tried = json.loads((folder / "advice_try.json").read_text())
    advice = json.loads((overfit_run / "summary.json").read_text())["advice"]
    names = [r["variant"] for r in tried["rows"]]
    assert names[0] == "current" and len(names) == 1 + len(advice["proposals"])
    for row, proposal in zip(tried["rows"][1:], advice["proposals"], strict=True):
        assert row["sets"] == proposal["sets"]
        assert row["variant"] in res.output
    assert all(r["seeds"] == [0, 1] for r in tried["rows"])
    runs = json.loads((folder / "comparison.json").read_text())["runs"]
    assert sorted({(r["variant"], r["seed"]) for r in runs}) == sorted(
        (n, s) for n in names for s in (0, 1))
    # improved.toml: the run's recipe with the best row's change, without the --set budget
    from trainwell.config import apply_overrides, load_recipe

    best = max(tried["rows"], key=lambda r: r["mean"])   # the first of equal means
    assert tried["best"] == best["variant"]
    assert all(r["mean"] <= best["mean"] for r in tried["rows"])
    improved = load_recipe(folder / "improved.toml")
    expected = apply_overrides(load_recipe(overfit_run / "recipe.toml"), best["sets"])
    assert improved.flat() | {"name": "", "description": ""} == \
        expected.flat() | {"name": "", "description": ""}
    assert improved.train.epochs == 25
    kept = {}   # the validation accuracy of the model each run kept (its summary)
    for x in runs:
        final = json.loads((Path(x["run_dir"]) / "summary.json").read_text())
        kept[(x["variant"], x["seed"])] = final["metrics"]["final"]["val_accuracy"]
    for r in tried["rows"][1:]:   # the gain is paired by seed and signed: better is positive
        per_seed = kept
        gains = [per_seed[(r["variant"], s)] - per_seed[("current", s)] for s in (0, 1)]
        assert r["gain_mean"] == pytest.approx(sum(gains) / 2)
        assert r["helped"] is (r["gain_mean"] > 0)


def _bad(runner, run: Path) -> str:
    res = runner.invoke(app, ["advise", str(run)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output
    return lines[0]


def test_bad_run_folders_get_one_error_line_each(runner, trained_run, tmp_path):
    assert "run directory" in _bad(runner, tmp_path / "nothing")
    no_history = shutil.copytree(trained_run, tmp_path / "a")
    (no_history / "history.json").unlink()
    assert "history.json is missing" in _bad(runner, no_history)
    running = shutil.copytree(trained_run, tmp_path / "b")
    (running / "summary.json").unlink()
    assert "still training" in _bad(runner, running)
    broken = shutil.copytree(trained_run, tmp_path / "c")
    (broken / "summary.json").write_text("{oops")
    assert "summary.json cannot be read" in _bad(runner, broken)


def test_try_options_without_try_are_refused(runner, trained_run):
    res = runner.invoke(app, ["advise", str(trained_run), "--seeds", "0,1"])
    assert res.exit_code == 2 and "only with --try" in res.output
