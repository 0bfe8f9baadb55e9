"""Export: BN folding, pruning, reduced precision, artifacts, the report table and the CLI."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from typer.testing import CliRunner

from trainwell.errors import CheckpointError, ConfigError, TrainwellError
from trainwell.export import (
    DeployedModel,
    compare_latency,
    count_parameters,
    export_model,
    kernel_sparsity,
    linear_kernels,
    paired_ratio,
    prune_model,
    to_precision,
)
from trainwell.nn import build_model, load_model, save_model

FAST = {"timing_repeats": 1, "large_batch": 32}
# the tests read TorchScript artifacts back with torch.jit.load, deprecated in torch 2.13
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one CPU thread is fastest, and steady on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _teacher_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(10, 4, generator=torch.Generator().manual_seed(123))
    x = torch.randn(n, 10, generator=g)
    return x, (x @ w).argmax(1)


def _trained(batch_norm: str = "before", dropout: float = 0.2, steps: int = 150) -> nn.Module:
    """A tiny classifier trained to ~90% on a linear teacher (full-batch Adam)."""
    torch.manual_seed(0)
    model = build_model(input_shape=(10,), n_outputs=4, hidden=[32, 16],
                        batch_norm=batch_norm, dropout=dropout)
    x, y = _teacher_data(600, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _splits() -> SimpleNamespace:
    xv, yv = _teacher_data(300, 1)
    xt, yt = _teacher_data(300, 2)
    return SimpleNamespace(x_val=xv, y_val=yv, x_test=xt, y_test=yt)


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    return _trained()


# --------------------------------------------------------------------------- folding
@pytest.mark.parametrize("place", ["before", "after"])
def test_folded_export_equals_the_batch_norm_model_in_eval_mode(place, tmp_path):
    model = _trained(place, steps=30)
    with torch.no_grad():         # statistics far from identity, so folding really matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 3)
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    res = export_model(model, fold_bn=True, format="torchscript", out=tmp_path, **FAST)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in res.model.modules())
    scripted = torch.jit.load(str(res.folder / "model.torchscript.pt"))
    x = torch.randn(64, 10) * 2
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)
    assert res.exported["parameters"] < res.original["parameters"]   # γ, β folded away
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())  # original untouched


def test_export_of_a_model_without_batch_norm_or_dropout(tmp_path):
    model = _trained("none", dropout=0.0, steps=20)
    res = export_model(model, fold_bn=True, format="state", out=tmp_path, splits=_splits(),
                       **FAST)
    x = torch.randn(16, 10)
    with torch.no_grad():
        assert torch.equal(load_model(res.folder)(x), model(x))
    assert res.original["val_accuracy"] == res.exported["val_accuracy"]


# --------------------------------------------------------------------------- pruning
def _all_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([k.flatten() for k in linear_kernels(model)])


def test_target_sparsity_zeroes_the_globally_smallest_weights(trained):
    pruned = prune_model(trained, sparsity=0.6)
    before, after = _all_weights(trained), _all_weights(pruned)
    k = round(0.6 * before.numel())
    smallest = torch.zeros_like(before, dtype=torch.bool)
    smallest[before.abs().argsort()[:k]] = True        # oracle: global magnitude ranking
    assert torch.equal(after == 0, smallest)
    assert torch.equal(after[~smallest], before[~smallest])   # the rest untouched
    assert kernel_sparsity(pruned) == pytest.approx(k / before.numel())
    layers = [(a, b) for a, b in zip(trained.modules(), pruned.modules(), strict=True)
              if isinstance(a, nn.Linear)]
    assert all(torch.equal(a.bias, b.bias) for a, b in layers if a.bias is not None)
    assert not hasattr(layers[0][1], "weight_mask")    # masks made permanent
    assert kernel_sparsity(trained) == 0.0              # original untouched


def test_threshold_zeroes_every_weight_below_it(trained):
    t = 0.05
    pruned = prune_model(trained, threshold=t)
    before, after = _all_weights(trained), _all_weights(pruned)
    small = before.abs() < t
    assert small.any() and (~small).any()
    assert torch.equal(after == 0, small)
    assert kernel_sparsity(pruned) == pytest.approx(float(small.double().mean()))
    total, nonzero = count_parameters(pruned)
    assert total == sum(p.numel() for p in trained.parameters())
    assert nonzero == sum(int((p != 0).sum()) for p in pruned.parameters())


@pytest.mark.parametrize("precision,format", [("fp32", "torchscript"), ("fp16", "state"),
                                              ("int8", "torchscript"), ("bf16", "pt2")])
def test_pruned_weights_stay_zero_in_the_exported_model(trained, tmp_path, precision, format):
    res = export_model(trained, sparsity=0.5, precision=precision, format=format,
                       out=tmp_path, splits=_splits(), **FAST)
    mask = _all_weights(prune_model(trained, sparsity=0.5)) == 0
    exported = _all_weights(res.model).float()
    assert (exported[mask] == 0).all()
    assert res.exported["sparsity"] >= 0.5 - 1e-9      # int8 rounding may zero a few more
    assert res.original["sparsity"] == 0.0
    row = next(r for r in res.table if r[0] == "linear-weight sparsity")
    assert row[2] == f"{100 * res.exported['sparsity']:.1f}%"
    if format == "state":
        stored = load_file(str(res.folder / "model.safetensors"))
        assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
        weights = torch.cat([v.flatten() for k, v in stored.items()
                             if k.endswith("weight") and v.dim() == 2])
        assert (weights[mask] == 0).all()
    if format == "torchscript" and precision == "fp32":
        state = torch.jit.load(str(res.folder / "model.torchscript.pt")).state_dict()
        weights = torch.cat([v.flatten() for k, v in state.items()
                             if k.endswith("weight") and v.dim() == 2])
        assert (weights[mask] == 0).all()


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("precision,agree,close", [("fp16", 0.99, 1e-3), ("bf16", 0.98, 5e-3),
                                                   ("int8", 0.97, 3e-2)])
def test_reduced_precision_predicts_like_the_original(trained, precision, agree, close):
    x, _ = _teacher_data(500, 5)
    net = to_precision(trained, precision, example=x[:4])
    with torch.no_grad():
        p0 = torch.softmax(trained(x), 1)
        p1 = torch.softmax(DeployedModel(net, {"fp16": torch.float16, "bf16": torch.bfloat16,
                                               "int8": torch.float32}[precision])(x), 1)
    assert (p0.argmax(1) == p1.argmax(1)).double().mean() >= agree
    # probabilities close on average (a few examples near a class boundary move more)
    assert (p0 - p1).abs().amax(1).mean() < close
    if precision in ("fp16", "bf16"):
        assert all(p.dtype != torch.float32 for p in net.parameters())
    else:
        assert "DynamicQuantizedLinear" in str(net) or "Quantized" in type(net.output).__name__


def test_exported_precisions_keep_accuracy_and_shrink_files(trained, tmp_path):
    splits = _splits()
    res16 = export_model(trained, precision="fp16", format="state", out=tmp_path,
                         splits=splits, **FAST)
    res8 = export_model(trained, precision="int8", format="torchscript", out=tmp_path,
                        splits=splits, **FAST)
    for res in (res16, res8):
        assert abs(res.exported["val_accuracy"] - res.original["val_accuracy"]) <= 0.02
        assert res.original["val_accuracy"] > 0.8
    assert res16.exported["bytes"] < 0.7 * res16.original["bytes"]
    # the accuracy in the table is a direct computation on the artifact
    scripted = torch.jit.load(str(res8.folder / "model.torchscript.pt"))
    with torch.no_grad():
        direct = float((scripted(splits.x_test).argmax(1) == splits.y_test).double().mean())
    assert res8.exported["test_accuracy"] == pytest.approx(direct)
    row = next(r for r in res8.table if r[0] == "test accuracy")
    assert row[2] == f"{direct:.4f}"


# --------------------------------------------------------------------------- errors
def test_invalid_options_are_config_errors(trained, tmp_path):
    with pytest.raises(ConfigError, match=r"precision: received 'fp8'; expected one of fp32"):
        export_model(trained, precision="fp8", out=tmp_path)
    with pytest.raises(ConfigError, match="format: received 'tflite'"):
        export_model(trained, format="tflite", out=tmp_path)
    with pytest.raises(ConfigError, match="sparsity"):
        export_model(trained, sparsity=1.5, out=tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        export_model(trained, prune=0.1, sparsity=0.5, out=tmp_path)
    with pytest.raises(ConfigError, match="int8 exports as torchscript"):
        export_model(trained, precision="int8", format="state", out=tmp_path)
    assert not any(tmp_path.iterdir())             # nothing written before validation


def test_a_run_without_a_saved_model_names_the_missing_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text('name = "x"\n')
    with pytest.raises(CheckpointError, match="model.json"):
        export_model(run)
    save_model(build_model(input_shape=(3,), n_outputs=2, hidden=[4]), run / "model")
    (run / "model" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        export_model(run)
    with pytest.raises(ConfigError, match="run directory"):
        export_model(tmp_path / "nowhere")


def test_onnx_without_the_extra_says_how_to_install(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import fails
    with pytest.raises(TrainwellError, match=r"pip install 'trainwell\[onnx\]'"):
        export_model(trained, format="onnx", out=tmp_path, **FAST)


def test_onnx_artifact_is_validated_with_onnxruntime(trained, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    res = export_model(trained, format="onnx", out=tmp_path, splits=_splits(), **FAST)
    session = ort.InferenceSession(str(res.folder / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    x, _ = _teacher_data(50, 9)
    (out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, trained(x).numpy(), rtol=1e-4, atol=1e-5)
    assert res.exported["val_accuracy"] == pytest.approx(res.original["val_accuracy"])
    # one self-contained file holding every fp32 weight (no external-data side file)
    assert [p.name for p in res.files] == ["model.onnx", "export.json"]
    assert res.exported["bytes"] > 4 * res.exported["parameters"]


# --------------------------------------------------------------------------- measuring
def test_latency_is_the_median_time_per_call():
    def slow(x):
        time.sleep(0.004)
        return x

    fast_t, slow_t = compare_latency([lambda x: x, slow], torch.zeros(1), warmup=1,
                                     repeats=3, min_block_s=0.0)
    assert slow_t >= 0.004 and fast_t < slow_t / 10
    assert paired_ratio([1.0, 2.0, 4.0], [2.0, 2.0, 2.0]) == 1.0   # median of 2, 1, 0.5


def test_exports_never_overwrite_and_write_a_manifest(trained, tmp_path):
    a = export_model(trained, out=tmp_path, name="same", **FAST)
    b = export_model(trained, out=tmp_path, name="same", **FAST)
    assert a.folder != b.folder and a.folder.is_dir() and b.folder.is_dir()
    manifest = json.loads((a.folder / "export.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["format"] == "torchscript"
    assert manifest["input"]["shape"] == ["batch", 10]
    assert len(manifest["files"]["model.torchscript.pt"]["sha256"]) == 64
    assert manifest["table"] == a.table
    latency = next(r for r in a.table if r[0] == "latency, batch 1")
    assert latency[3] == f"×{a.exported['latency_1_ratio']:.2f}"


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tiny_export")
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(240, 6)).astype(np.float32)
    xt = rng.normal(size=(60, 6)).astype(np.float32)
    np.savez(tmp / "tiny.npz", x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))
    (tmp / "tiny.toml").write_text(
        f'name = "tiny"\n[data]\ndataset = "{(tmp / "tiny.npz").as_posix()}"\n'
        'validation = 40\n[model]\nhidden = [16]\nbatch_norm = "before"\n'
        '[regularization]\ndropout = 0.2\n[train]\nepochs = 2\nbatch_size = 32\n'
        'device = "cpu"\n')
    from trainwell.cli import app

    result = CliRunner().invoke(app, ["fit", str(tmp / "tiny.toml"), "--out",
                                      str(tmp / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp / "runs").iterdir()
    return run


def test_cli_export_prints_the_table_and_adds_it_to_the_report(tiny_run):
    from trainwell.cli import app

    result = CliRunner().invoke(app, ["export", str(tiny_run), "--fold-bn", "--sparsity", "0.5",
                                      "--precision", "int8", "--threads", "1",
                                      "--repeats", "2"])
    assert result.exit_code == 0, result.output
    for label in ("val accuracy", "test accuracy", "non-zero parameters", "file size",
                  "latency, batch 1", "latency, batch 1024", "50.0%"):
        assert label in result.stdout
    (folder,) = (tiny_run / "export").iterdir()
    assert (folder / "model.torchscript.pt").is_file() and (folder / "export.json").is_file()
    summary = json.loads((tiny_run / "summary.json").read_text())
    (section,) = [s for s in summary["sections"] if s["title"] == f"Export {folder.name}"]
    # the "original" accuracy is the run's own final validation accuracy
    val_row = next(r for r in section["table"] if r[0] == "val accuracy")
    assert val_row[1] == f"{summary['metrics']['final']['val_accuracy']:.4f}"
    assert f"Export {folder.name}" in (tiny_run / "report.html").read_text()


@pytest.mark.parametrize("args,message", [
    (["--precision", "fp8"], "error: precision: received 'fp8'"),
    (["--format", "tflite"], "error: format: received 'tflite'"),
    (["--sparsity", "2"], "error: sparsity: received 2.0"),
    (["--prune", "0.1", "--sparsity", "0.5"], "error: --prune/--sparsity"),
])
def test_cli_export_rejects_bad_options_with_exit_code_2(tiny_run, args, message):
    from trainwell.cli import app

    result = CliRunner().invoke(app, ["export", str(tiny_run), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and "Traceback" not in result.output


def test_cli_export_of_a_run_without_model_names_the_file(tmp_path):
    from trainwell.cli import app

    (tmp_path / "recipe.toml").write_text('name = "x"\n')
    result = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 2 and "model/model.json" in result.stderr


def test_export_warns_when_reloaded_data_do_not_reproduce_the_run(tiny_run, tmp_path):
    path = tiny_run / "summary.json"
    saved = path.read_text()
    summary = json.loads(saved)
    summary["metrics"]["final"]["val_accuracy"] = 0.123   # as if the data had changed
    path.write_text(json.dumps(summary))
    try:
        res = export_model(tiny_run, out=tmp_path, update_report=False, **FAST)
    finally:
        path.write_text(saved)
    (warning,) = res.warnings
    assert "recorded 0.1230" in warning and "val accuracy" in warning
    assert json.loads((res.folder / "export.json").read_text())["warnings"] == [warning]
    clean = export_model(tiny_run, out=tmp_path, update_report=False, **FAST)
    assert clean.warnings == []


def test_an_out_path_that_is_a_file_is_refused_before_any_work(trained, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    with pytest.raises(ConfigError) as err:
        export_model(trained, out=f)
    assert err.value.field == "--out" and "notes.txt" in str(err.value)
    assert f.read_text() == "keep me"
