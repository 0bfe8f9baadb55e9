"""The figure worker draws the same PNG files this process would, and whatever it does not
draw (it died, it failed) is drawn here: a run directory never lacks a figure."""

from __future__ import annotations

import pytest

from trainwell.report import figure_worker
from trainwell.report.figure_worker import FigureWorker, draw
from trainwell.report.plots import plot_confusion_matrix, plot_learning_curves

HISTORY = [{"epoch": 1, "loss": 0.9, "val_loss": 1.0, "accuracy": 0.6, "val_accuracy": 0.55,
            "lr": 0.01},
           {"epoch": 2, "loss": 0.5, "val_loss": 0.7, "accuracy": 0.8, "val_accuracy": 0.7,
            "lr": 0.005}]
CM = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]


def _send_both(worker, folder):
    worker.submit("learning_curves", HISTORY, str(folder), lr_curve=None)
    worker.submit("confusion_matrix", CM, ["a", "b", "c"], str(folder / "cm.png"), title="cm")


def test_the_worker_draws_the_files_this_process_would(tmp_path):
    import matplotlib

    here, there = tmp_path / "here", tmp_path / "there"
    with matplotlib.rc_context():
        # matplotlib's settings as a fresh process has them (another test's library may have
        # changed the style of this one, e.g. optuna's plots)
        matplotlib.rc_file_defaults()
        plot_learning_curves(HISTORY, here)
        plot_confusion_matrix(CM, ["a", "b", "c"], here / "cm.png", title="cm")
    worker = FigureWorker()
    try:
        _send_both(worker, there)
        drawn_here = worker.finish()
    finally:
        worker.close()
    assert drawn_here == [], "the worker did not draw these"
    names = sorted(p.name for p in here.iterdir())
    assert names == ["accuracy.png", "cm.png", "loss.png", "lr.png"]
    assert sorted(p.name for p in there.iterdir()) == names
    for n in names:
        assert (here / n).read_bytes() == (there / n).read_bytes(), n


def test_figures_a_dead_worker_did_not_draw_are_drawn_here(tmp_path):
    worker = FigureWorker()
    worker._proc.kill()
    worker._proc.wait()
    _send_both(worker, tmp_path)
    assert sorted(worker.finish()) == ["confusion_matrix", "learning_curves"]
    worker.close()
    assert {p.name for p in tmp_path.iterdir()} == {"accuracy.png", "cm.png", "loss.png",
                                                     "lr.png"}


def test_a_figure_the_worker_could_not_draw_is_drawn_here(tmp_path):
    worker = FigureWorker()
    try:
        # a rate that is not a number: the worker's drawing fails (this process then draws
        # the job as recorded, here with a good curve)
        worker.submit("learning_curves", HISTORY, str(tmp_path),
                      lr_curve={"epoch": [0.5], "lr": ["not a number"]})
        worker._jobs[0] = ("learning_curves", [HISTORY, str(tmp_path)], {"lr_curve": None})
        assert worker.finish() == ["learning_curves"]
    finally:
        worker.close()
    assert (tmp_path / "loss.png").is_file()


def test_without_a_worker_a_figure_is_drawn_at_once(tmp_path):
    assert figure_worker.active_worker() is None
    draw("confusion_matrix", CM, None, str(tmp_path / "cm.png"))
    assert (tmp_path / "cm.png").is_file()
    with pytest.raises(ValueError, match="unknown figure"):
        draw("pie_chart")


def test_no_worker_when_matplotlib_is_already_loaded():
    import matplotlib  # noqa: F401

    assert figure_worker.start_figure_worker() is None
