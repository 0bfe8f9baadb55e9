"""`trainwell predict` refuses NaN/Inf inputs and warns about inputs already scaled to [0, 1]."""

from __future__ import annotations

import json
import shutil

import numpy as np

from trainwell.cli import app
from trainwell.cli.predict import looks_prescaled


def test_predict_nan_or_inf_inputs_are_one_data_error(runner, trained_run, tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    x[3, 1] = np.nan
    x[7, 0] = np.inf
    np.savez(tmp_path / "xnan.npz", x=x)
    result = runner.invoke(app, ["predict", str(trained_run), str(tmp_path / "xnan.npz")])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""  # no rows of nan probabilities
    err = result.stderr
    assert err.startswith("error:") and "xnan.npz" in err
    assert "2 examples of 10" in err and "first at example 3" in err and "NaN or Inf" in err
    assert "Traceback" not in result.output


def test_looks_prescaled_only_when_training_data_were_scaled():
    x01 = np.linspace(0, 1, 12, dtype=np.float32).reshape(2, 6)
    assert looks_prescaled(x01, {"scale": 255.0})
    assert not looks_prescaled(x01 * 255, {"scale": 255.0})
    assert not looks_prescaled(x01, {"scale": 1.0})
    assert not looks_prescaled(x01, {})


def _scaled_copy(trained_run, tmp_path):
    """The tiny run, with its saved data stats saying the training data were divided by 255."""
    run = tmp_path / "run255"
    shutil.copytree(trained_run, run)
    path = run / "model" / "model.json"
    info = json.loads(path.read_text())
    info["extra"]["data"]["scale"] = 255.0
    path.write_text(json.dumps(info))
    return run


def test_predict_warns_once_when_inputs_look_already_scaled(runner, trained_run, tmp_path):
    run = _scaled_copy(trained_run, tmp_path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "xfloat.npz", x=rng.uniform(0, 1, size=(5, 6)).astype(np.float32))
    np.savez(tmp_path / "xraw.npz", x=rng.uniform(0, 255, size=(5, 6)).astype(np.float32))
    scaled = runner.invoke(app, ["predict", str(run), str(tmp_path / "xfloat.npz")])
    assert scaled.exit_code == 0, scaled.output
    assert scaled.stderr.count("warning:") == 1
    assert "already scaled to [0, 1]" in scaled.stderr and "0–255" in scaled.stderr
    raw = runner.invoke(app, ["predict", str(run), str(tmp_path / "xraw.npz")])
    assert raw.exit_code == 0 and "already scaled" not in raw.stderr
