"""`trainwell fit --tensorboard`: learning curves and probe statistics as TensorBoard events."""

from __future__ import annotations

import pytest

from trainwell.cli import app

pytest.importorskip("tensorboard")


def _tags(log_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in log_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "histograms": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["histograms"])
    return tags


def test_fit_tensorboard_logs_history_and_gradient_health(tiny_dir, runner, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--quiet", "--diagnose", "--tensorboard",
                                 "--set", "train.diagnose_every=2"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    tags = _tags(run / "tensorboard")
    assert {"epoch/loss", "epoch/val_loss", "epoch/accuracy", "epoch/lr"} <= tags
    assert "grad_norm/hidden1" in tags and "gradients/hidden1" in tags
    assert "train.tensorboard" not in result.output
    assert "tensorboard = true" in (run / "recipe.toml").read_text()


def test_missing_tensorboard_is_one_error_before_training(tiny_dir, runner, tmp_path,
                                                          monkeypatch):
    import trainwell.diagnose.tensorboard as tb
    from trainwell.errors import ConfigError

    def missing():
        raise ConfigError("--tensorboard", "tensorboard logging",
                          'the tensorboard package: pip install "trainwell[tensorboard]"')

    monkeypatch.setattr(tb, "_summary_writer", missing)
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--quiet", "--tensorboard"])
    assert result.exit_code == 2
    assert 'pip install "trainwell[tensorboard]"' in result.output
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]   # nothing trained, no run left
