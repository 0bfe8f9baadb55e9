"""The chapter's transfer study and the pretraining comparison, end to end on synthetic data."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from rich.console import Console

from trainwell.errors import ConfigError
from trainwell.experiments import (
    PretrainStudyConfig,
    TransferStudyConfig,
    run_pretrain_study,
    run_transfer_study,
    synthetic_fashion,
)
from trainwell.experiments.transfer_study import mean_std, parse_seeds


def test_default_setup_is_the_seeds():
    c = TransferStudyConfig()
    assert c.hidden == (300, 100, 50, 50, 50) and c.activation == "selu"
    assert (c.init, c.init_distribution) == ("glorot", "uniform")      # Keras Dense default
    assert (c.optimizer, c.lr, c.batch_size) == ("sgd", 1e-3, 32)
    assert (c.epochs_a, c.epochs_b, c.frozen_epochs) == (20, 20, 4)
    assert c.lr * c.lr_factor == pytest.approx(1e-4)                   # 3rd edition
    assert c.b_train_size == 200 and not c.vary_b_subset
    assert c.extra_factors() == [1.0]           # the 2nd edition keeps 1e-3 after unfreezing


def test_mean_std_is_the_sample_standard_deviation():
    s = mean_std([0.90, 0.94, 0.95])
    assert s["mean"] == pytest.approx(0.93)
    assert s["std"] == pytest.approx(math.sqrt(((0.03) ** 2 + 0.01 ** 2 + 0.02 ** 2) / 2))
    assert mean_std([0.5])["std"] == 0.0


def test_parse_seeds_accepts_lists_and_ranges_and_rejects_garbage():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5") == [3, 4, 5]
    assert parse_seeds([7]) == [7]
    for bad in ("x", "", "1,1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_transfer_study_runs_end_to_end_and_writes_its_table_and_run_directory(tmp_path):
    console = Console(record=True, width=140)
    result = run_transfer_study(seeds=[0, 1], quick=True, out=tmp_path, console=console)
    assert [r["seed"] for r in result.rows] == [0, 1]
    for r in result.rows:
        for k in ("a", "b_scratch", "b_on_a", "b_on_a_x1"):
            assert 0.0 <= r[k] <= 1.0
        assert r["gain"] == pytest.approx(r["b_on_a"] - r["b_scratch"])
    assert result.stats["b_on_a"]["mean"] == pytest.approx(
        sum(r["b_on_a"] for r in result.rows) / 2)
    text = console.export_text()
    for word in ("task A", "task B from scratch", "task B on A", "mean", "std"):
        assert word in text
    run = result.run_dir
    assert run is not None and run.parent == tmp_path
    for name in ("summary.json", "study.json", "report.html", "plots/transfer_study.png",
                 "plots/task_b_phases.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    titles = [s["title"] for s in summary["sections"]]
    assert "Transfer study: test accuracy per seed" in titles
    table = summary["sections"][titles.index("Transfer study: test accuracy per seed")]["table"]
    assert table[0][0] == "seed" and [row[0] for row in table[1:]] == ["0", "1", "mean", "std"]
    assert len(table[0]) == 5 and "phase-2 lr 0.05" in table[0][4]
    study = json.loads((run / "study.json").read_text())
    phases = [row["phase"] for row in study["histories"]["0"]["b_on_a"]]
    c = result.config
    assert phases == ["frozen"] * c.frozen_epochs + ["unfrozen"] * (c.epochs_b - c.frozen_epochs)
    lrs = [row["lr"] for row in study["histories"]["0"]["b_on_a"]]
    assert lrs[0] == pytest.approx(c.lr) and lrs[-1] == pytest.approx(c.lr * c.lr_factor)
    same_lr = [row["lr"] for row in study["histories"]["0"]["b_on_a_x1"]]
    assert same_lr[-1] == pytest.approx(c.lr)   # the 2nd-edition arm keeps the rate
    html = (run / "report.html").read_text()
    assert "Transfer study: test accuracy per seed" in html


def test_study_with_out_none_writes_no_run_directory():
    splits = synthetic_fashion(n_train=400, n_val=100, n_test=100)
    config = TransferStudyConfig.quick()
    config.epochs_a, config.epochs_b, config.frozen_epochs = 1, 2, 1
    result = run_transfer_study(seeds=[3], splits=splits, config=config, out=None, quiet=True)
    assert result.run_dir is None and len(result.rows) == 1


def test_pretrain_study_runs_end_to_end(tmp_path):
    config = PretrainStudyConfig.quick()
    result = run_pretrain_study(seeds=[0], config=config, quick=True, out=tmp_path, quiet=True)
    (row,) = result.rows
    assert 0 <= row["scratch"] <= 1 and 0 <= row["pretrained"] <= 1
    assert result.layers[0] == ["layer", "autoencoder", "MSE before", "MSE after"]
    for name, _, before, after in result.layers[1:]:
        assert after < before, name
    run = result.run_dir
    assert (run / "plots" / "pretrain_study.png").is_file() and (run / "report.html").is_file()
    titles = [s["title"] for s in json.loads((run / "summary.json").read_text())["sections"]]
    assert any(t.startswith("Greedy pretraining") for t in titles)


def test_pretrain_study_rejects_more_labels_than_images():
    config = PretrainStudyConfig.quick()
    config.n_labels = 10**6
    with pytest.raises(ConfigError, match="--labels"):
        run_pretrain_study(seeds=[0], config=config, quick=True, out=None, quiet=True)


@pytest.mark.realdata
@pytest.mark.slow
def test_transfer_study_on_fashion_mnist_one_short_seed(tmp_path):
    root = os.environ.get("TRAINWELL_DATA")
    if not root or not (Path(root) / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not under $TRAINWELL_DATA")
    config = TransferStudyConfig(epochs_a=1, epochs_b=5, frozen_epochs=2, device="cpu")
    result = run_transfer_study(seeds=[0], config=config, out=None, quiet=True)
    (row,) = result.rows
    assert row["a"] > 0.75          # one epoch of SGD at 1e-3 already separates the 8 classes
    assert row["b_on_a"] > 0.5


@pytest.mark.parametrize("change, field", [
    (dict(lr_factor=0.0), "transfer.lr_factor"),
    (dict(lr_factor=2.0), "transfer.lr_factor"),
    (dict(compare_lr_factors=(0.0,)), "--compare-lr-factors"),
    (dict(epochs_a=0), "--epochs-a"),
    (dict(epochs_b=0), "--epochs-b"),
    (dict(frozen_epochs=7), "--frozen-epochs"),
    (dict(lr=-1.0), "optimizer.lr"),
])
def test_a_bad_study_setup_is_refused_before_model_a_trains(change, field, monkeypatch):
    from dataclasses import replace

    import trainwell.experiments.transfer_study as ts

    def no_training(*a, **k):
        raise AssertionError("model A was trained before the setup was checked")

    monkeypatch.setattr(ts, "_fit", no_training)
    config = replace(TransferStudyConfig.quick(), **change)
    with pytest.raises(ConfigError) as err:
        run_transfer_study(seeds=[0], quick=True, config=config, out=None, quiet=True)
    assert err.value.field == field
