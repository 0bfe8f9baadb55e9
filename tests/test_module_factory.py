"""``[model] module = "file.py:factory"``: your own network through every command, and the
one-line errors of a factory that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from trainwell.cli import app
from trainwell.errors import ConfigError
from trainwell.nn import build_from_factory, build_model, load_model, save_model

FACTORIES = '''
import torch
from torch import nn

CALLS = []

def small_cnn(input_shape, n_outputs, width=4):
    CALLS.append(width)
    return nn.Sequential(
        nn.Unflatten(1, (1, input_shape[0])),
        nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                      nn.ReLU()),
        nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Dropout(0.2)),
        nn.Flatten(),
        nn.Linear(width * input_shape[0] * input_shape[1], n_outputs))

def raises(input_shape, n_outputs, **_):
    raise RuntimeError("no GPU here")

def wrong_shape(input_shape, n_outputs, **_):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1], n_outputs + 1))

def not_a_module(input_shape, n_outputs, **_):
    return "a network"
'''

RECIPE = """\
name = "{name}"
[data]
dataset = "{data}"
validation = 40
{classes}
[model]
module = "{module}"
[model.args]
width = 3
[optimizer]
name = "adam"
lr = 0.01
[schedule]
name = "constant"
[train]
epochs = {epochs}
batch_size = 32
device = "cpu"
early_stopping = false
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("factory")
    (d / "nets.py").write_text(FACTORIES)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = rng.normal(size=(240, 6, 6)).astype(np.float32)
    x[np.arange(240), y, y] += 3.0            # the class is a bright pixel: learnable
    np.savez(d / "img.npz", x=x, y=y)
    for name, module, epochs, classes in (
            ("own", "nets.py:small_cnn", 3, ""), ("own_b", "nets.py:small_cnn", 3,
                                                 "classes = [0, 1]")):
        (d / f"{name}.toml").write_text(RECIPE.format(
            name=name, data=(d / "img.npz").as_posix(), module=module, epochs=epochs,
            classes=classes))
    return d


def _invoke(args, cwd: Path):
    import os
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def own_run(project) -> Path:
    result = _invoke(["fit", "own.toml", "--out", "runs", "--quiet"], project)
    assert result.exit_code == 0, result.output
    (run,) = (project / "runs").iterdir()
    return run


def test_a_factory_module_trains_and_reloads_from_its_config(own_run):
    info = json.loads((own_run / "model" / "model.json").read_text())
    cfg = info["trainwell_config"]
    assert cfg["kind"] == "module" and cfg["args"] == {"width": 3}
    assert Path(cfg["module"].rpartition(":")[0]).is_absolute()   # works from any folder
    summary = json.loads((own_run / "summary.json").read_text())
    assert summary["metrics"]["final"]["test_accuracy"] > 0.6
    model = load_model(own_run / "model")
    assert model[1][0].out_channels == 3


def test_resume_of_a_factory_run_ends_like_the_uninterrupted_run(project, tmp_path):
    full = _invoke(["fit", "own.toml", "--out", str(tmp_path / "a"), "--quiet",
                    "--set", "train.epochs=3"], project)
    part = _invoke(["fit", "own.toml", "--out", str(tmp_path / "b"), "--quiet",
                    "--set", "train.epochs=1"], project)
    assert full.exit_code == 0 and part.exit_code == 0, part.output
    (run_b,) = (tmp_path / "b").iterdir()
    more = _invoke(["fit", "own.toml", "--resume", str(run_b), "--quiet", "--force-resume",
                    "--set", "train.epochs=3"], project)
    assert more.exit_code == 0, more.output
    (run_a,) = (tmp_path / "a").iterdir()
    a, b = load_model(run_a / "model"), load_model(run_b / "model")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k


def test_diagnose_finds_the_conv_and_linear_layers_by_type(project, own_run):
    result = _invoke(["diagnose", str(own_run), "--steps", "12", "--every", "4"], project)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip() for line in result.output.splitlines()
            if line.startswith("│")}
    assert {"1.0", "2.0", "4"} <= rows       # conv, conv, linear: found by type


def test_transfer_reuses_the_factory_blocks_under_a_new_head(project, own_run):
    result = _invoke(["transfer", str(own_run), "own_b.toml", "--out", "tr", "--quiet",
                      "--reuse", "1", "--frozen-epochs", "1"], project)
    assert result.exit_code == 0, result.output
    (run,) = (project / "tr").iterdir()
    model = load_model(run / "model")       # rebuilt: factory, first block, new head
    names = [n for n, _ in model.named_children()]
    assert names == ["0", "1", "flatten", "output"]
    assert model.output.out_features == 2
    assert model.output.in_features == 3 * 6 * 6   # measured: the reused conv's output


def test_export_folds_the_factory_batch_norm_and_predict_matches(project, own_run, tmp_path):
    result = _invoke(["export", str(own_run), "--fold-bn", "--out", str(tmp_path / "ex")],
                     project)
    assert result.exit_code == 0, result.output
    assert "difference 0" in result.output or "reproduces" in result.output
    pred = _invoke(["predict", str(own_run), str(project / "img.npz"), "--mc", "5",
                    "--out", str(tmp_path / "p.npz")], project)
    assert pred.exit_code == 0, pred.output
    assert np.load(tmp_path / "p.npz")["probabilities"].shape == (240, 3)


@pytest.mark.parametrize("module, says", [
    ("nets.py:nowhere", "has no function 'nowhere'"),
    ("missing.py:small_cnn", "does not exist"),
    ("no_such_package.nets:small_cnn", "cannot import"),
    ("nets.py:raises", "RuntimeError: no GPU here"),
    ("nets.py:wrong_shape", "logits of shape (batch, 3)"),
    ("nets.py:not_a_module", "returned a str"),
    ("nets.py", "package.module:function"),
])
def test_a_factory_that_cannot_be_used_is_one_error_line(project, module, says, tmp_path):
    text = (project / "own.toml").read_text().replace('"nets.py:small_cnn"', json.dumps(module))
    recipe = project / f"bad_{abs(hash(module))}.toml"
    recipe.write_text(text)
    result = _invoke(["fit", recipe.name, "--out", str(tmp_path), "--quiet"], project)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error: model.module"), result.output
    assert says in " ".join(result.output.split())
    assert not any(tmp_path.iterdir())     # no run folder for a model that cannot be built


def test_python_api_builds_the_factory_with_args_and_round_trips(project, tmp_path):
    spec = f"{(project / 'nets.py').as_posix()}:small_cnn"
    model = build_model(input_shape=(6, 6), n_outputs=3, kind="module", module=spec,
                        args={"width": 2})
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    x = torch.randn(4, 6, 6)
    model.eval()
    assert torch.equal(again(x), model(x))
    with pytest.raises(ConfigError, match="model.args"):
        build_from_factory(spec, input_shape=(6, 6), n_outputs=3, args=[2])
