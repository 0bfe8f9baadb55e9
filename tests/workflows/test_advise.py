"""``advise_run`` on synthetic runs built to show each finding, and on bad run folders."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest

from trainwell.errors import ConfigError
from trainwell.workflows.advise import advise_run

_spec = importlib.util.spec_from_file_location("advise_runs", Path(__file__).parent / "advise_runs.py")
advise_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(advise_runs)

CONTRADICTS = {"overfitting": "underfitting", "underfitting": "overfitting",
               "lr_too_high": "lr_too_low", "lr_too_low": "lr_too_high",
               "early_stopping_too_early": "still_improving"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return advise_runs.build_runs(tmp_path_factory.mktemp("advise"))


@pytest.fixture(scope="module")
def advice(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the SELU + batch norm warning of its probe
        return {name: advise_run(run, probe_steps=60) for name, run in runs.items()}


@pytest.mark.parametrize("name,first", [
    ("too_high_lr", {"lr_too_high"}),
    ("tiny", {"underfitting"}),
    ("huge", {"overfitting"}),
    ("sigmoid", {"vanishing_gradients", "saturated_units"}),
    ("selu_bn", {"selu_not_self_normalizing"}),
    ("patience1", {"early_stopping_too_early"}),
])
def test_each_run_gets_its_finding_first_and_no_contradicting_one(advice, name, first):
    a = advice[name]
    keys = [f.key for f in a.findings]
    assert keys and keys[0] in first, a.text()
    assert a.findings[0].alarming and a.findings[0].evidence
    assert CONTRADICTS.get(keys[0]) not in keys, a.text()
    assert a.proposals and keys[0] in a.proposals[0].addresses, a.text()


def test_a_healthy_run_gets_no_alarming_finding(advice):
    a = advice["healthy"]
    assert a.alarming == [], a.text()
    assert "No problem found" in a.text()


def test_proposals_follow_the_chapter_for_each_problem(advice):
    sets = {name: [s for p in a.proposals for s in p.sets] for name, a in advice.items()}
    assert any(s.startswith("optimizer.lr=") for s in sets["too_high_lr"])
    assert "model.hidden=[2]" in sets["tiny"]                      # a wider network
    assert "regularization.dropout=0.2" in sets["huge"]            # dropout 10–50 %
    assert "model.activation=elu" in sets["sigmoid"]               # He init + ELU
    assert "model.batch_norm=none" in sets["selu_bn"]              # Table 11-4
    assert "train.patience=10" in sets["patience1"]
    for a in advice.values():
        assert len(a.proposals) <= 3
        for p in a.proposals:
            assert p.guideline and p.diff and p.set_args().startswith("--set ")


def test_numbers_in_the_evidence_come_from_the_run(advice, runs):
    history = json.loads((runs["huge"] / "history.json").read_text())
    val = [r["val_loss"] for r in history]
    over = next(f for f in advice["huge"].findings if f.key == "overfitting")
    rise = (val[-1] - min(val)) / min(val)
    assert f"{rise:.0%} above its minimum {min(val):.3f}" in over.evidence[0]


def test_a_fit_with_diagnose_uses_its_own_probes(advice):
    assert advice["sigmoid"].diagnosis_source == "fit"
    assert advice["huge"].diagnosis_source == "probe"


def test_the_advice_is_written_into_the_run_report(advice, runs):
    summary = json.loads((runs["huge"] / "summary.json").read_text())
    assert summary["advice"]["findings"][0]["key"] == "overfitting"
    section = next(s for s in summary["sections"] if s["title"] == "Advice")
    for p in advice["huge"].proposals:   # each proposal with its --set line and full diff
        assert p.set_args() in section["text"] and p.diff_text() in section["text"].replace(
            "\n   ", "\n")
    assert section["table"][1][0] == "Overfitting"
    assert "Advice" in (runs["huge"] / "report.html").read_text()


# ---- bad input: one clear error, nothing loaded ---------------------------------------------
def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_run_without_history_is_refused(runs, tmp_path):
    run = _copy_run(runs["tiny"], tmp_path / "r")
    (run / "history.json").unlink()
    with pytest.raises(ConfigError, match="history.json is missing"):
        advise_run(run)


def test_a_run_still_in_progress_is_refused(runs, tmp_path):
    run = _copy_run(runs["tiny"], tmp_path / "r")
    (run / "summary.json").unlink()
    with pytest.raises(ConfigError, match="still training"):
        advise_run(run)


def test_an_unreadable_summary_is_refused(runs, tmp_path):
    run = _copy_run(runs["tiny"], tmp_path / "r")
    (run / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match="summary.json cannot be read"):
        advise_run(run)
