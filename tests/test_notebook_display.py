"""Jupyter display: _repr_html_ of a history, a run, a loaded run, a comparison, a diagnosis."""

from __future__ import annotations

import html
import re

import torch
from torch import nn

from trainwell.train import History, Trainer


def _cells(page: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", page)]


def test_history_shows_curves_and_every_epoch_value():
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    h = Trainer(nn.Linear(4, 3), device="cpu").fit(x, y, epochs=3, verbose=0,
                                                   validation_data=(x, y))
    page = h._repr_html_()
    assert "data:image/png;base64," in page and "History: 3 epochs" in page
    cells = _cells(page)
    assert f"{h.epochs[-1]['val_loss']:.4g}" in cells and "3" in cells
    long = History([{"epoch": i, "loss": 1.0 / i} for i in range(1, 31)])._repr_html_()
    assert "first and last 5 of 30" in long and len(_cells(long)) == 10 * 2  # epoch, loss


def test_a_run_and_its_loaded_copy_show_the_final_metrics_and_the_report(tmp_path):
    from tests.cli.conftest import TINY_RECIPE, write_tiny_npz

    from trainwell.config import load_recipe
    from trainwell.workflows.run import fit_recipe, load_run

    write_tiny_npz(tmp_path / "tiny.npz")
    (tmp_path / "tiny.toml").write_text(TINY_RECIPE.format(path=(tmp_path / "tiny.npz")
                                                           .as_posix()))
    result = fit_recipe(load_recipe(tmp_path / "tiny.toml"), out=tmp_path / "runs", quiet=True)
    page = result._repr_html_()
    final = result.summary["metrics"]["final"]
    assert "tiny: completed, 3 epochs" in page
    assert f"{final['test_accuracy']:.4g}" in _cells(page)
    assert "report.html" in page and "data:image/png;base64," in page
    loaded = load_run(result.run_dir)._repr_html_()
    assert f"{final['test_accuracy']:.4g}" in _cells(loaded) and "data:image/png" in loaded


def test_a_diagnosis_shows_the_verdict_and_the_layer_table():
    from trainwell.diagnose import diagnose

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid(),
                          nn.Linear(16, 2))
    x, y = torch.randn(128, 8), torch.randint(0, 2, (128,))
    result = diagnose(model, x, y, steps=20, every=5, batch_size=32)
    page = result._repr_html_()
    assert f"Gradient health: {result.network}" in page
    header, rows = result.diagnosis.table()
    assert all(html.escape(h) in page for h in header) and len(_cells(page)) == len(rows) * len(
        header)


def test_a_comparison_shows_one_row_per_variant_with_mean_and_std(tmp_path):
    from trainwell.studies.compare_spec import Comparison

    rows = [dict(variant=name, description=desc, seeds=[0, 1], metric="val_accuracy",
                 best_mean=mean, best_std=0.01, time_per_epoch=0.5, statuses=["completed"])
            for name, desc, mean in (("activation=relu", "ReLU/He", 0.85),
                                     ("activation=elu", "ELU/He", 0.87))]
    page = Comparison(dir=tmp_path, rows=rows, outcomes=[], metric="val_accuracy")._repr_html_()
    cells = _cells(page)
    assert "Comparison of 2 variants" in page
    assert ["activation=elu", "87.00% ± 1.00", "2"] == cells[6:9]
    assert "ELU/He" in cells and "report:" not in page  # no report written yet
