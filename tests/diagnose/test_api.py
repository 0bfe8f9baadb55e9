"""diagnose() on recipes, run-directory outputs during fit, TensorBoard, the CLI command."""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from trainwell.diagnose import (
    EXPLODING,
    HEALTHY,
    GradientProbe,
    ProbeRecord,
    diagnose,
    write_run_diagnostics,
    write_tensorboard,
)
from trainwell.errors import ConfigError

_spec = importlib.util.spec_from_file_location("diagnose_test_helpers",
                                               Path(__file__).parent / "_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

RECIPES = Path(__file__).parents[2] / "src" / "trainwell" / "recipes"


@pytest.fixture
def npz_recipe(tmp_path):
    """A recipe on a small synthetic npz dataset (16 features, 4 classes)."""
    x, y = helpers.synthetic(n=600, d=16, k=4)
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    text = f"""
name = "tiny"
[data]
dataset = "npz"
path = "{tmp_path / 'data.npz'}"
validation = 100
[model]
hidden = [16, 16, 16]
activation = "elu"
[optimizer]
name = "sgd"
lr = 0.01
momentum = 0.0
[train]
epochs = 1
batch_size = 50
device = "cpu"
"""
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


def test_diagnose_a_recipe_file_with_overrides(npz_recipe):
    r = diagnose(npz_recipe, steps=12, every=3, overrides=["optimizer.lr=50.0"])
    assert r.recipe.optimizer.lr == 50.0
    assert r.network == EXPLODING
    r = diagnose(npz_recipe, steps=12, every=3)
    assert r.network == HEALTHY
    assert r.record.steps.tolist() == [0, 3, 6, 9] and r.trainer.step == 12


def test_diagnose_rejects_bad_steps_and_module_without_data(npz_recipe):
    with pytest.raises(ConfigError, match="--steps"):
        diagnose(npz_recipe, steps=0)
    from torch import nn
    with pytest.raises(ConfigError, match="x, y"):
        diagnose(nn.Linear(3, 2))


def test_fit_with_diagnose_writes_samples_plots_and_report_section(npz_recipe, tmp_path):
    from trainwell.recipe import apply_overrides, load_recipe
    from trainwell.run import fit_recipe, read_summary

    recipe = apply_overrides(load_recipe(npz_recipe), ["train.diagnose=true",
                                                        "train.diagnose_every=2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_recipe(recipe, out=tmp_path / "runs", quiet=True)
    run = result.run_dir
    rec = ProbeRecord.load(run / "diagnostics" / "probes.npz")
    assert result.trainer.step >= 6
    assert rec.steps.tolist() == list(range(0, result.trainer.step, 2))
    assert rec.layers == ["hidden1", "hidden2", "hidden3", "output"]
    verdict = json.loads((run / "diagnostics" / "verdict.json").read_text())
    assert verdict["network"] == HEALTHY and len(verdict["layers"]) == 4
    for png in ("gradient_norms.png", "activation_std.png"):
        assert (run / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    section = [s for s in read_summary(run)["sections"] if s["title"] == "Gradient health"]
    assert section and section[0]["table"][0][-1] == "verdict"
    assert len(section[0]["table"]) == 5 and "HEALTHY" in section[0]["text"]
    html = (run / "report.html").read_text()
    assert "Gradient health" in html and html.count("data:image/png;base64") >= 2


def test_write_run_diagnostics_returns_the_verdict_and_files(tmp_path):
    from torch import nn

    probe = GradientProbe(every=1)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    helpers.run_loop(model, probe, steps=3)
    out = write_run_diagnostics(probe, tmp_path)
    assert out["network"] in (HEALTHY, "dying")
    assert {Path(f).name for f in out["files"]} == {
        "probes.npz", "verdict.json", "gradient_norms.png", "activation_std.png"}


def test_tensorboard_event_file_holds_scalars_and_histograms(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch import nn

    probe = GradientProbe(every=2)
    model = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4))
    helpers.run_loop(model, probe, steps=5)
    write_tensorboard(probe.record(), tmp_path / "tb")
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()
    assert "grad_norm/0" in tags["scalars"] and "saturated/0" in tags["scalars"]
    assert "gradients/2" in tags["histograms"] and "activations/0" in tags["histograms"]
    events = acc.Scalars("grad_norm/0")
    assert [e.step for e in events] == [0, 2, 4]
    np.testing.assert_allclose([e.value for e in events],
                               probe.record().column("grad_norm")[:, 0], rtol=1e-6)


def test_missing_tensorboard_package_says_how_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch.utils.tensorboard" or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r'pip install "trainwell\[tensorboard\]"'):
        write_tensorboard(ProbeRecord(np.zeros(0, int), np.zeros((0, 1, 16)),
                                      np.zeros((0, 1, 2, 4)), ["a"], ["a"], ["none"],
                                      np.ones(1, int)), tmp_path)


def _app():
    from trainwell.cli.diagnose import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:   # keep "diagnose" a subcommand
        pass
    return app


def test_cli_prints_the_table_and_the_verdict_and_saves_outputs(npz_recipe, tmp_path):
    res = CliRunner().invoke(_app(), ["diagnose", str(npz_recipe), "--steps", "6", "--every",
                                      "2", "--set", "model.activation=sigmoid", "--out",
                                      str(tmp_path / "out"), "--tensorboard",
                                      str(tmp_path / "tb")])
    assert res.exit_code == 0, res.output
    for word in ("layer", "act mean", "dead %", "ratio to last", "update/weight", "hidden3",
                 "Network verdict"):
        assert word in res.output
    folder = next((tmp_path / "out").iterdir())
    assert (folder / "diagnostics" / "probes.npz").is_file()
    assert any((tmp_path / "tb").iterdir())


def test_cli_on_a_run_directory_shows_its_saved_diagnosis(tmp_path):
    from torch import nn

    probe = GradientProbe(every=1)
    helpers.run_loop(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), probe,
                     steps=2)
    write_run_diagnostics(probe, tmp_path)
    res = CliRunner().invoke(_app(), ["diagnose", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Network verdict:")


def test_cli_on_a_run_without_saved_diagnosis_says_it_probes_fresh_weights(npz_recipe,
                                                                         tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text(npz_recipe.read_text())
    res = CliRunner().invoke(_app(), ["diagnose", str(run), "--every", "50"])
    assert res.exit_code == 0, res.output
    assert "no saved diagnosis" in res.output and "--diagnose" in res.output
    assert "Network verdict" in res.output


def test_cli_bad_input_is_one_config_error(tmp_path):
    res = CliRunner().invoke(_app(), ["diagnose", str(tmp_path / "nope.toml")])
    assert isinstance(res.exception, ConfigError)


def test_demonstration_recipes_load_and_say_what_they_show():
    from trainwell.recipe import resolve

    names = sorted(p.stem for p in RECIPES.glob("diagnose_*.toml"))
    assert {"diagnose_vanishing_sigmoid", "diagnose_he_relu", "diagnose_selu",
            "diagnose_sigmoid_bn", "diagnose_exploding", "diagnose_clipped",
            "diagnose_dying_relu", "diagnose_leaky_relu"} <= set(names)
    for name in names:
        r = resolve(name)
        assert r.train.diagnose and r.data.dataset == "fashion_mnist", name
    sig, bn = resolve("diagnose_vanishing_sigmoid"), resolve("diagnose_sigmoid_bn")
    assert (sig.model.activation, sig.model.init) == ("sigmoid", "normal")
    assert len(sig.model.hidden) >= 20 and bn.model.hidden == sig.model.hidden
    assert bn.model.batch_norm == "before"
    assert resolve("diagnose_clipped").optimizer.clip_norm > 0
    assert resolve("diagnose_exploding").optimizer.lr == resolve("diagnose_clipped").optimizer.lr


@pytest.mark.realdata
@pytest.mark.skipif(not (Path(os.environ.get("TRAINWELL_DATA", "/nonexistent"))
                         / "fashion-mnist").is_dir(), reason="no Fashion-MNIST")
def test_vanishing_sigmoid_recipe_on_fashion_mnist_flags_lower_layers():
    r = diagnose("diagnose_vanishing_sigmoid", steps=60, every=6,
                 overrides=["data.train_limit=2000", "train.device=\"cpu\""])
    d = r.diagnosis
    assert d.network == "vanishing"
    assert "hidden1" in d.flagged("vanishing") and "hidden1" in d.flagged("saturating")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_unavailable_device_is_one_error_before_the_diagnosis_starts(npz_recipe):
    from trainwell.cli import app

    res = CliRunner().invoke(app, ["diagnose", str(npz_recipe), "--device", "cuda"])
    assert res.exit_code == 2
    assert res.output.startswith("error: train.device") and "diagnosing" not in res.output
