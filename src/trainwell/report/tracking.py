"""Experiment tracking with MLflow (optional extra ``trainwell[mlflow]``).

``train.mlflow = true`` (``trainwell fit --mlflow``) logs a finished run to MLflow: the
resolved recipe as parameters (``section.field``), every epoch's metrics (step = epoch), the
final train/validation/test metrics, and ``report.html``, ``summary.json``, ``history.csv``,
``recipe.toml`` and ``model/`` as artifacts. ``train.mlflow_uri`` picks the tracking server or
store; empty means a local ``mlruns/`` folder in the working directory. Open it with
``mlflow ui --backend-store-uri mlruns``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["require_mlflow", "tracking_uri", "log_run_to_mlflow"]

EXPERIMENT = "trainwell"


def require_mlflow() -> None:
    """Fail early, before any folder or training step, when mlflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise ConfigError("train.mlflow", True, 'the mlflow package: pip install '
                          '"trainwell[mlflow]" (or set train.mlflow = false)') from exc


def tracking_uri(uri: str | None) -> str:
    """The tracking URI: ``uri``, or a ``file:`` URI of ``./mlruns`` when empty."""
    if uri:
        if "://" in uri or uri.startswith("file:"):
            return uri
        return Path(uri).resolve().as_uri()  # a plain folder: a local file store
    return Path("mlruns").resolve().as_uri()


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is not None:
        out[prefix] = str(value)[:500]


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def log_run_to_mlflow(run_dir: str | os.PathLike, uri: str | None = None, *,
                      experiment: str = EXPERIMENT) -> dict[str, str]:
    """Log the run directory ``run_dir`` as one MLflow run; returns ``{"uri", "run_id"}``."""
    require_mlflow()
    from trainwell.config.toml_text import tomllib

    run = Path(run_dir)
    uri = tracking_uri(uri)
    if uri.startswith("file:"):  # MLflow 3 asks file stores to opt in; a local folder is asked for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    summary = _read(run / "summary.json", {})
    history = _read(run / "history.json", [])
    mlrun = client.create_run(exp_id, run_name=run.name,
                              tags={"trainwell.run_dir": str(run),
                                    "trainwell.status": str(summary.get("status", ""))})
    run_id = mlrun.info.run_id
    try:
        params: dict[str, str] = {}
        if (run / "recipe.toml").is_file():
            _flat("", tomllib.loads((run / "recipe.toml").read_text(encoding="utf-8")), params)
        items = list(params.items())
        for lo in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=[mlflow.entities.Param(k, v)
                                             for k, v in items[lo:lo + 100]])
        metrics = []
        for row in history:
            step = int(row.get("epoch", 0))
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                    metrics.append(mlflow.entities.Metric(k, float(v), 0, step))
        final = (summary.get("metrics") or {}).get("final") or {}
        metrics += [mlflow.entities.Metric(f"final_{k}", float(v), 0, 0)
                    for k, v in final.items() if isinstance(v, (int, float))
                    and math.isfinite(v)]
        for lo in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[lo:lo + 1000])
        for name in ("report.html", "summary.json", "history.csv", "recipe.toml"):
            if (run / name).is_file():
                client.log_artifact(run_id, str(run / name))
        if (run / "model").is_dir():
            client.log_artifacts(run_id, str(run / "model"), artifact_path="model")
        if (run / "plots").is_dir():
            client.log_artifacts(run_id, str(run / "plots"), artifact_path="plots")
        client.set_terminated(run_id, status="FINISHED" if summary.get("status") in (
            "completed", "stopped") else "FAILED")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return {"uri": uri, "run_id": run_id}
