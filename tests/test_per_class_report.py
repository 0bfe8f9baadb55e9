"""Classification runs report per-class precision/recall/F1 and a confusion matrix."""

from __future__ import annotations

import json

import pytest
import torch

from trainwell.train.metrics import per_class_table


def test_per_class_table_follows_the_formulas():
    cm = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2: absent, never predicted
    rows = per_class_table(cm, ["a", "b", "c"])
    assert rows[0] == ["class", "precision", "recall", "F1", "support"]
    a, b, c, macro = rows[1:]
    assert a[1:] == pytest.approx([5 / 7, 5 / 6, 2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6), 6])
    assert b[1:] == pytest.approx([3 / 4, 3 / 5, 2 * 0.75 * 0.6 / 1.35, 5])
    assert c[1:] == [0.0, 0.0, 0.0, 0]
    assert macro[1] == pytest.approx((5 / 7 + 3 / 4) / 3) and macro[4] == 11


def test_a_fit_run_writes_the_table_the_matrix_and_shows_them(tmp_path):
    from tests.cli.conftest import TINY_RECIPE, write_tiny_npz

    from trainwell.config import apply_overrides, load_recipe
    from trainwell.workflows.run import fit_recipe

    write_tiny_npz(tmp_path / "tiny.npz")
    (tmp_path / "tiny.toml").write_text(TINY_RECIPE.format(path=(tmp_path / "tiny.npz")
                                                           .as_posix()))
    r = apply_overrides(load_recipe(tmp_path / "tiny.toml"), ["train.epochs=1"])
    result = fit_recipe(r, out=tmp_path / "runs", quiet=True)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    cm = torch.tensor(summary["per_class"]["confusion_matrix"])
    assert cm.shape == (3, 3) and int(cm.sum()) == 60  # the 60 test examples
    pred = result.model.eval()(result.splits.x_test).argmax(1)
    assert cm.diag().sum() / cm.sum() == pytest.approx(float((pred == result.splits.y_test)
                                                             .float().mean()))
    assert (result.run_dir / "plots" / "confusion_matrix.png").stat().st_size > 1000
    page = (result.run_dir / "report.html").read_text()
    assert "Per-class metrics" in page and "macro average" in page and "confusion_matrix" in page


def test_still_improving_reports_the_fall_as_a_share_of_the_starting_loss():
    from trainwell.report.plots import fit_diagnosis

    history = [{"epoch": i + 1, "loss": v, "val_loss": v} for i, v in
               enumerate([1.2, 1.05, 0.8, 0.6, 0.5])]
    note = fit_diagnosis(history, None)
    assert note["verdict"] == "still_improving"
    assert "fell 52.4%" in note["text"]  # (1.05 − 0.5) / 1.05, not / 0.5 (110 %)
