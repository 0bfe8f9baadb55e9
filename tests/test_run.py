"""Run directories: unique folders, artifacts, interrupt + resume, divergence, reports."""

from __future__ import annotations

import base64
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from trainwell.errors import ConfigError
from trainwell.recipe import apply_overrides, recipe_from_dict
from trainwell.report.plots import fit_diagnosis
from trainwell.run import (
    add_summary_section,
    fit_recipe,
    load_run,
    new_run_dir,
    read_summary,
    write_report,
)
from trainwell.train import Callback


def _tiny(tmp_path: Path, **train) -> tuple[Path, object]:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3))
    x = rng.normal(size=(200, 5)).astype(np.float32)
    xt = rng.normal(size=(50, 5)).astype(np.float32)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))
    recipe = recipe_from_dict({
        "name": "tiny",
        "data": {"dataset": str(path), "validation": 40},
        "model": {"hidden": [12]},
        "optimizer": {"name": "nesterov", "lr": 0.05},
        "schedule": {"name": "onecycle"},
        "train": {"epochs": 4, "batch_size": 16, "device": "cpu", **train},
    })
    return path, recipe


def test_new_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    import trainwell.report.rundir as rundir

    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20250101-000000")
    (tmp_path / "20250101-000000-x").mkdir()
    (tmp_path / "20250101-000000-x" / "keep.txt").write_text("mine")
    a = new_run_dir(tmp_path, "x")
    b = new_run_dir(tmp_path, "x")
    assert a.name == "20250101-000000-x-2" and b.name == "20250101-000000-x-3"
    assert (tmp_path / "20250101-000000-x" / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One completed run shared by the read-only tests below."""
    tmp_path = tmp_path_factory.mktemp("finished")
    _, recipe = _tiny(tmp_path)
    return tmp_path, recipe, fit_recipe(recipe, out=tmp_path / "runs", quiet=True)


def test_fit_recipe_summary_metrics_are_the_models_own(finished):
    tmp_path, _, res = finished
    s = res.summary
    assert s["status"] == "completed"
    # oracle: accuracy of the saved model on the test split, computed directly
    loaded = load_run(res.run_dir)
    splits = loaded.splits_loader()
    with torch.no_grad():
        acc = float((loaded.model(splits.x_test).argmax(1) == splits.y_test).double().mean())
    assert abs(s["metrics"]["final"]["test_accuracy"] - acc) < 1e-12
    assert s["median_epoch_time"] == pytest.approx(np.median(s["epoch_times"]))
    assert s["metrics"]["best"]["epoch"] in range(1, 5)
    # best_monitored is the epoch of the best train.monitor (val_loss); best_val_accuracy the
    # epoch of the highest validation accuracy, each recomputed from the history.
    hist_rows = json.loads((res.run_dir / "history.json").read_text())
    by_loss = min(hist_rows, key=lambda r: r["val_loss"])
    by_acc = max(hist_rows, key=lambda r: r["val_accuracy"])
    assert s["metrics"]["best_monitored"]["epoch"] == by_loss["epoch"]
    assert s["metrics"]["best_monitored"]["monitor"] == "val_loss"
    assert s["metrics"]["best"] == s["metrics"]["best_monitored"]      # the old name still works
    assert s["metrics"]["best_val_accuracy"] == {"epoch": by_acc["epoch"],
                                                 "val_accuracy": by_acc["val_accuracy"]}
    assert s["total_time"] >= sum(s["epoch_times"]) * 0.99
    # compile = "auto" (the default) leaves a 40-step run eager, and the summary says so
    assert s["compile"] == {"requested": "auto", "decided": False, "ran": False, "seconds": 0.0,
                            "cache_hit": None, "compiled_steps": 0, "eager_steps": 40}
    hist = json.loads((res.run_dir / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    # the saved recipe re-runs as is: relative data paths were made absolute
    saved = (res.run_dir / "recipe.toml").read_text()
    assert str(tmp_path / "tiny.npz") in saved


class _CtrlC(Callback):
    """Sends a real SIGINT after ``at`` optimizer steps (the trainer then stops cleanly)."""

    def __init__(self, at: int):
        self.at = at

    def on_batch_end(self, t, step):
        if t.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_run_resumes_in_the_same_directory_and_matches_a_straight_run(tmp_path):
    _, recipe = _tiny(tmp_path, early_stopping=False)
    straight = fit_recipe(recipe, out=tmp_path / "a", quiet=True)

    res = fit_recipe(recipe, out=tmp_path / "b", quiet=True, callbacks=[_CtrlC(at=17)],
                     interrupt="return")
    assert res.summary["status"] == "interrupted"
    assert (res.run_dir / "checkpoints" / "last.pt").is_file()
    assert read_summary(res.run_dir)["status"] == "interrupted"

    resumed = fit_recipe(recipe, quiet=True, resume=res.run_dir)
    assert resumed.run_dir == res.run_dir
    assert list((tmp_path / "b").iterdir()) == [res.run_dir]  # no new folder
    assert resumed.summary["status"] == "completed"
    assert resumed.summary["epochs_run"] == 4
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_interrupt_raises_by_default_after_saving(tmp_path):
    _, recipe = _tiny(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        fit_recipe(recipe, out=tmp_path / "r", quiet=True, callbacks=[_CtrlC(at=3)])
    (run,) = list((tmp_path / "r").iterdir())
    assert read_summary(run)["status"] == "interrupted"


def test_resume_refuses_a_different_recipe_listing_the_fields(finished):
    _, recipe, res = finished
    changed = apply_overrides(recipe, ["optimizer.lr=0.2", "model.hidden=[12]"])
    with pytest.raises(ConfigError) as info:
        fit_recipe(changed, quiet=True, resume=res.run_dir)
    assert "optimizer.lr" in str(info.value) and "model.hidden" not in str(info.value)
    assert not (res.run_dir / "recipe.before-resume.toml").exists()


def test_forced_resume_continues_with_the_new_recipe(tmp_path):
    _, recipe = _tiny(tmp_path, epochs=1)
    res = fit_recipe(recipe, out=tmp_path / "r", quiet=True)
    more = apply_overrides(recipe, ["train.epochs=2"])
    forced = fit_recipe(more, quiet=True, resume=res.run_dir, force=True)
    assert forced.summary["epochs_run"] == 2 and forced.run_dir == res.run_dir
    assert (res.run_dir / "recipe.before-resume.toml").is_file()


def test_divergence_is_reported_with_step_and_layer(tmp_path):
    _, recipe = _tiny(tmp_path)
    bad = apply_overrides(recipe, ["optimizer.name=sgd", "optimizer.lr=1e30",
                                   "schedule.name=constant", "train.early_stopping=false"])
    res = fit_recipe(bad, out=tmp_path / "r", quiet=True)
    s = res.summary
    assert s["status"] == "diverged"
    assert s["divergence"]["step"] >= 0 and s["divergence"]["layer"]
    assert "step" in s["message"] and s["divergence"]["layer"] in s["message"]
    for p in res.model.parameters():  # the last good weights were kept
        assert torch.isfinite(p).all()


def test_report_embeds_every_plot_and_every_section(finished):
    run = finished[2].run_dir
    extra_png = run / "plots" / "feature_extra.png"
    extra_png.write_bytes((run / "plots" / "loss.png").read_bytes()[:-1] + b"\x00")
    add_summary_section(run, "Export", [["format", "size"], ["onnx", "1.1 MB"]], text="done")
    add_summary_section(run, "Export", [["format", "size"], ["onnx", "2.2 MB"]])  # replaces
    html = write_report(run).read_text()
    for png in sorted((run / "plots").glob("*.png")):
        assert base64.b64encode(png.read_bytes()).decode() in html, png.name
    assert "<h2>Export</h2>" in html and "2.2 MB" in html and "1.1 MB" not in html
    assert html.count("<h2>Export</h2>") == 1
    assert "test" in html and "[optimizer]" in html  # metrics and the recipe
    assert "http://" not in html and "https://" not in html  # self-contained


def test_fit_diagnosis_says_overfitting_when_val_loss_rises():
    hist = [{"epoch": i + 1, "loss": 1.0 - 0.1 * i, "val_loss": v}
            for i, v in enumerate([0.9, 0.7, 0.6, 0.65, 0.75, 0.9])]
    d = fit_diagnosis(hist)
    assert d["verdict"] == "overfitting" and "regularization" in d["text"]


def test_fit_diagnosis_uses_the_accuracy_gap():
    hist = [{"epoch": i + 1, "loss": 0.5, "val_loss": 0.6} for i in range(5)]
    d = fit_diagnosis(hist, {"train_accuracy": 0.99, "val_accuracy": 0.85})
    assert d["verdict"] == "generalization_gap" and "14.0 points" in d["text"]
    assert "Regularization" in d["text"]


def test_fit_diagnosis_says_train_longer_while_improving():
    hist = [{"epoch": i + 1, "loss": 1 / (i + 1), "val_loss": 1.2 / (i + 1)} for i in range(6)]
    assert fit_diagnosis(hist)["verdict"] == "still_improving"


def test_fit_diagnosis_says_bigger_network_on_a_plateau():
    hist = [{"epoch": i + 1, "loss": 0.9, "val_loss": 0.91 + 0.001 * (i % 2)} for i in range(6)]
    d = fit_diagnosis(hist, {"train_accuracy": 0.62, "val_accuracy": 0.61})
    assert d["verdict"] == "underfitting" and "bigger network" in d["text"]


def test_fit_diagnosis_needs_validation_data():
    assert fit_diagnosis([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]) is None


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(not (Path(os.environ.get("TRAINWELL_DATA", "/nonexistent"))
                         / "fashion-mnist").is_dir(), reason="needs $TRAINWELL_DATA/fashion-mnist")
def test_default_recipe_reaches_088_test_accuracy_on_fashion_mnist(tmp_path):
    from trainwell.recipe import resolve

    res = fit_recipe(apply_overrides(resolve("default"), ["train.device=cpu"]),
                     out=tmp_path, quiet=True)
    final = res.summary["metrics"]["final"]
    assert res.summary["status"] == "completed"
    assert final["test_accuracy"] >= 0.88, final


def test_max_lr_auto_runs_the_lr_finder_and_saves_the_number(tmp_path):
    import io

    from rich.console import Console

    from trainwell.lrfind import lr_find_recipe
    from trainwell.recipe import load_recipe

    _, recipe = _tiny(tmp_path, epochs=1)
    auto = apply_overrides(recipe, ['schedule.max_lr="auto"'])
    buf = io.StringIO()
    res = fit_recipe(auto, out=tmp_path / "r", console=Console(file=buf, width=200))
    # oracle: the finder run on its own, on the same recipe and data, suggests the same rate
    expected, _ = lr_find_recipe(auto, splits=res.splits)
    saved = load_recipe(res.run_dir / "recipe.toml")
    assert saved.schedule.max_lr == pytest.approx(expected.suggestion, rel=1e-12)
    assert f"{expected.suggestion:.3g}" in buf.getvalue() and "LR finder" in buf.getvalue()
    assert (res.run_dir / "plots" / "lr_find.png").is_file()
    assert json.loads((res.run_dir / "lr_find.json").read_text())["suggestion"] == \
        pytest.approx(expected.suggestion)
    titles = [s["title"] for s in res.summary["sections"]]
    assert "LR finder" in titles
    assert "lr_find" in (res.run_dir / "report.html").read_text()
    # the trainer's 1cycle peaked at that rate
    assert res.trainer.schedule.max_lr == pytest.approx(expected.suggestion)
    # resuming with the same "auto" recipe takes the measured number: no diff, no new search
    again = fit_recipe(auto, quiet=True, resume=res.run_dir)
    assert load_recipe(again.run_dir / "recipe.toml").schedule.max_lr == saved.schedule.max_lr
    assert not (res.run_dir / "recipe.before-resume.toml").exists()


def test_fit_diagnosis_counts_one_epoch_in_the_singular():
    two = [{"epoch": 1, "loss": 1.0, "val_loss": 1.0}, {"epoch": 2, "loss": 0.8, "val_loss": 0.8}]
    d = fit_diagnosis(two)
    assert d["verdict"] == "still_improving"
    assert "over the last epoch " in d["text"] and "1 epochs" not in d["text"]
    flat = [{"epoch": 1, "loss": 0.5, "val_loss": 0.5}, {"epoch": 2, "loss": 0.5, "val_loss": 0.5}]
    assert "over the last epoch " in fit_diagnosis(flat)["text"]
    five = [{"epoch": i + 1, "loss": 1.0 - 0.1 * i, "val_loss": 1.0 - 0.1 * i} for i in range(5)]
    assert "over the last 3 epochs " in fit_diagnosis(five)["text"]
