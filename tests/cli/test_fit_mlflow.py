"""fit --mlflow: the run lands in an MLflow store, read back with the mlflow client."""

from __future__ import annotations

import json
import sys

import pytest

from trainwell.cli import app


@pytest.mark.slow
def test_fit_logs_params_metrics_and_artifacts_to_a_file_store(runner, tiny_dir, tmp_path,
                                                                monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    store = tmp_path / "store"
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--mlflow-uri", str(store), "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and p.name.endswith("tiny"))
    info = json.loads((run_dir / "summary.json").read_text())["mlflow"]
    assert f"MLflow run {info['run_id']}" in result.stdout
    client = mlflow.tracking.MlflowClient(tracking_uri=store.as_uri())
    run = client.get_run(info["run_id"])
    assert run.data.params["optimizer.name"] == "nesterov"
    assert run.data.params["train.epochs"] == "2"
    history = json.loads((run_dir / "history.json").read_text())
    losses = client.get_metric_history(info["run_id"], "val_loss")
    assert [m.step for m in losses] == [1, 2]
    assert [m.value for m in losses] == pytest.approx([h["val_loss"] for h in history])
    assert "final_test_accuracy" in run.data.metrics
    files = {f.path for f in client.list_artifacts(info["run_id"])}
    assert {"report.html", "summary.json", "recipe.toml", "model"} <= files
    assert run.info.status == "FINISHED"


def test_a_missing_mlflow_is_refused_before_any_folder(runner, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--mlflow"])
    assert result.exit_code == 2
    assert "train.mlflow" in result.stderr and "trainwell[mlflow]" in result.stderr
    assert list(tmp_path.iterdir()) == []
