"""`trainwell transfer` and `trainwell study`: run directories, both phases, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from trainwell.cli import app

RECIPE = """\
name = "{name}"

[data]
dataset = "{path}"
validation = 0.25

[model]
hidden = [12, 8]
{task}

[optimizer]
name = "sgd"
lr = 0.05

[schedule]
name = "constant"

[train]
epochs = {epochs}
batch_size = 16
device = "cpu"
early_stopping = false
"""


def _images(path: Path, n: int, size: int, classes: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, size, size))
    y = np.arange(n) % classes
    x = (protos[y] + 0.3 * rng.standard_normal((n, size, size))).clip(0, 1).astype(np.float32)
    yt = np.arange(40) % classes
    xt = (protos[yt] + 0.3 * rng.standard_normal((40, size, size))).clip(0, 1).astype(np.float32)
    np.savez(path, x=x, y=y, x_test=xt, y_test=yt)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("transfer")
    for name, size, classes, task, epochs in (("a", 6, 4, "", 2), ("b", 6, 2, 'task = "binary"', 5),
                                              ("big", 9, 2, 'task = "binary"', 3)):
        npz = _images(d / f"{name}.npz", 160, size, classes, seed=len(name))
        (d / f"{name}.toml").write_text(RECIPE.format(name=name, path=npz.as_posix(), task=task,
                                                      epochs=epochs))
    out = d / "runs"
    result = CliRunner().invoke(app, ["fit", str(d / "a.toml"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    (source,) = [p for p in out.iterdir() if p.is_dir()]
    return d, source


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


def test_transfer_writes_a_run_directory_with_both_phases(setup, tmp_path):
    d, source = setup
    before = _weights(source)
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "b.toml"),
                                      "--frozen-epochs", "2", "--lr-factor", "0.1",
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for name in ("recipe.toml", "history.csv", "history.json", "model/model.json",
                 "summary.json", "report.html", "plots/transfer_phases.png", "plots/loss.png"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [r["phase"] for r in history] == ["frozen"] * 2 + ["unfrozen"] * 3
    assert history[0]["lr"] == pytest.approx(0.05) and history[-1]["lr"] == pytest.approx(0.005)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["transfer"]["reused"] == ["hidden1", "hidden2"]
    assert summary["transfer"]["phase_switch_epoch"] == 2
    assert summary["epochs_run"] == 5
    assert "Transfer learning" in [s["title"] for s in summary["sections"]]
    # the source run is untouched
    after = _weights(source)
    assert all(torch.equal(before[k], after[k]) for k in before)
    info = json.loads((run / "model" / "model.json").read_text())
    assert info["trainwell_config"]["n_outputs"] == 1
    assert info["trainwell_config"]["task"] == "binary"


def test_transfer_reuse_and_unfreeze_options(setup, tmp_path):
    d, source = setup
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "b.toml"), "--reuse", "1",
                                      "--unfreeze", "0", "--frozen-epochs", "1",
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["transfer"]["reused"] == ["hidden1"]
    src, new = _weights(source), _weights(run)
    # --unfreeze 0: the reused layer never trains, in either phase
    assert torch.equal(src["hidden1.linear.weight"], new["hidden1.linear.weight"])


def test_transfer_input_size_mismatch_says_what_the_source_expects(setup, tmp_path):
    d, source = setup
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "big.toml"),
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert "expects inputs of shape (6, 6)" in result.output and "(9, 9)" in result.output
    assert not any(tmp_path.iterdir())          # refused before any run directory or step


def test_transfer_resize_trains_on_resized_images(setup, tmp_path):
    d, source = setup
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "big.toml"), "--resize",
                                      "--frozen-epochs", "1", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["transfer"]["resized"] is True
    assert summary["dataset"]["input_shape"] == [6, 6]


@pytest.mark.parametrize("args, field", [(["--unfreeze", "most"], "--unfreeze"),
                                         (["--reuse", "5"], "transfer.reuse"),
                                         (["--lr-factor", "3"], "transfer.lr_factor"),
                                         (["--frozen-epochs", "9"], "train.epochs")])
def test_transfer_bad_options_are_one_line_errors(setup, tmp_path, args, field):
    d, source = setup
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "b.toml"), *args,
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {field}")


def test_transfer_from_a_folder_that_is_not_a_run(setup, tmp_path):
    d, _ = setup
    result = CliRunner().invoke(app, ["transfer", str(tmp_path), str(d / "b.toml"), "--quiet"])
    assert result.exit_code == 2 and "run directory" in result.output


def test_study_transfer_quick_prints_the_table(tmp_path):
    result = CliRunner().invoke(app, ["study", "transfer", "--quick", "--seeds", "0",
                                      "--epochs-a", "2", "--epochs-b", "3", "--frozen-epochs",
                                      "1", "--out", str(tmp_path)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "task B on A" in result.output and "mean" in result.output
    (run,) = list(tmp_path.iterdir())
    assert (run / "report.html").is_file()


def test_study_rejects_bad_seeds():
    result = CliRunner().invoke(app, ["study", "pretrain", "--quick", "--seeds", "a,b"])
    assert result.exit_code == 2 and result.output.startswith("error: --seeds")


def test_pretrain_command_pretrains_then_fits_on_few_labels(setup, tmp_path):
    d, _ = setup
    result = CliRunner().invoke(app, ["pretrain", str(d / "a.toml"), "--set",
                                      "data.train_limit=40", "--epochs-per-layer", "2",
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"]["n_train"] == 40
    (section,) = [s for s in summary["sections"] if s["title"] == "Greedy layer-wise pretraining"]
    assert [row[0] for row in section["table"][1:]] == ["hidden1", "hidden2"]
    assert "120 unlabeled inputs" in section["text"]     # all training inputs, labels ignored
    assert (run / "report.html").is_file()


@pytest.mark.parametrize("args", [["--lr-factor", "3"], ["--frozen-epochs", "9"]])
def test_transfer_bad_phase_options_fail_before_any_output_or_run_directory(setup, tmp_path,
                                                                            args):
    d, source = setup
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "b.toml"), *args,
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args, field", [(["--epochs-per-layer", "0"], "pretrain.epochs_per_layer"),
                                         (["--pretrain-lr", "-1"], "pretrain.lr")])
def test_pretrain_bad_options_fail_before_the_data_load(setup, tmp_path, monkeypatch, args,
                                                        field):
    import trainwell.compose as compose

    def no_data(*a, **k):
        raise AssertionError("the data were loaded before the options were checked")

    monkeypatch.setattr(compose, "load_splits", no_data)
    d, _ = setup
    result = CliRunner().invoke(app, ["pretrain", str(d / "a.toml"), *args,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {field}")


def test_transfer_announces_each_phase_with_its_learning_rate(setup, tmp_path):
    d, source = setup
    result = CliRunner().invoke(app, ["transfer", str(source), str(d / "b.toml"),
                                      "--frozen-epochs", "1", "--lr-factor", "0.1",
                                      "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "phase 1 (frozen reused layers)" in out
    assert "phase 2 (unfrozen" in out and out.index("phase 1") < out.index("phase 2")
