"""``trainwell study chapter11``: every group runs in --quick mode, the JSON is the tables'
data, the recipes validate and are listed, bad options stop before training."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trainwell.cli import app
from trainwell.config import builtin_recipes, resolve
from trainwell.studies.chapter11 import GROUPS, group_names
from trainwell.studies.chapter11.groups import recipe_names


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch11")
    result = CliRunner().invoke(app, ["study", "chapter11", "--quick", "--seeds", "3",
                                      "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out    # warnings go to stderr


def test_quick_study_covers_every_group_and_variant(quick_json):
    data, out = quick_json
    got = {(r["group"], r["variant"]) for r in data["variants"]}
    assert got == {(g.name, v.name) for g in GROUPS for v in g.variants}
    for r in data["variants"]:
        assert r["seeds"] == [3]
        shown = r["final_val_accuracy"] if r["metric"] == "final_val_accuracy" else r[
            "test_accuracy"]
        assert len(shown["per_seed"]) == 1 and 0.0 <= shown["per_seed"][0] <= 1.0
        assert shown["mean"] == shown["per_seed"][0] and shown["std"] is None


def test_trained_variants_record_final_and_best_validation_accuracy(quick_json):
    data, _ = quick_json
    for r in data["variants"]:
        if r["group"] in ("deep_nets", "batch_norm", "optimizers", "schedules"):
            final, best = r["final_val_accuracy"]["mean"], r["best_val_accuracy"]["mean"]
            assert best >= final - 1e-9          # the best epoch is at least the last one
            assert r["epochs"] >= 2


def test_quick_study_writes_a_report_with_a_curve_per_group(quick_json):
    from pathlib import Path

    data, _ = quick_json
    run = Path(data["run_dir"])
    assert (run / "report.html").is_file()
    for name in group_names():
        assert (run / "plots" / f"{name}.png").is_file()
    study = json.loads((run / "study.json").read_text())
    assert len(study["records"]) == len(data["variants"])
    html = (run / "report.html").read_text()
    assert "Batch norm" in html and "trainwell mean ± std" in html


def test_book_values_are_the_chapters_printed_numbers():
    book = {(g.name, v.name): v.book for g in GROUPS for v in g.variants if v.book is not None}
    # Géron, ch. 11 (2nd edition): model A val_accuracy 0.9205 after 20 epochs; model B
    # evaluate() 0.9705; model B on A evaluate() 0.9935.
    assert book == {("transfer", "a"): 0.9205, ("transfer", "b_scratch"): 0.9705,
                    ("transfer", "b_on_a"): 0.9935}


def _transfer_result(values):
    from trainwell.studies.chapter11.runner import GroupResult, VariantResult

    group = next(g for g in GROUPS if g.name == "transfer")
    spec = next(v for v in group.variants if v.name == "b_on_a")
    v = VariantResult("transfer", "b_on_a", spec.recipe, spec.metric, spec.book)
    for seed, value in enumerate(values):
        v.add(seed, final_val=None, best_val=None, test=value)
    return GroupResult(group, [v])


def test_report_says_when_the_mean_is_beyond_one_runs_spread_of_the_book():
    from trainwell.studies.chapter11 import book_notes

    # spread of one run = hypot(std over seeds, √(p(1−p)/2000)); book 99.35 %: sampling 0.18
    within = book_notes(_transfer_result([0.9875, 0.9910, 0.9810]))[0]   # std 0.51, gap −0.70
    assert "within the spread of one run" in within and "(3 seeds)" in within
    far = book_notes(_transfer_result([0.86, 0.87, 0.88]))[0]           # std 1.0, gap −12.35
    assert "more than twice the spread of one run" in far and "-12.35 points" in far
    assert "2,000 examples" in far and "clones A" in far      # n and the known difference
    assert "fewer than 3 seeds" not in far
    assert "fewer than 3 seeds" in book_notes(_transfer_result([0.86]))[0]


def test_study_recipes_validate_and_are_listed():
    listed = set(builtin_recipes())
    for name in recipe_names():
        assert name in listed
        resolve(name)
    listing = CliRunner().invoke(app, ["recipes"])
    assert "chapter11_deep_selu" in listing.output


def test_unknown_group_is_one_error_before_training(tmp_path):
    result = CliRunner().invoke(app, ["study", "chapter11", "--only", "deep_net",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--only" in result.output and "deep_nets" in result.output
    assert not any(tmp_path.iterdir())
