"""Mixed precision: bf16 autocast (CPU and CUDA), fp16 with a gradient scaler, exact resumes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.train import NanGuard, Trainer, resolve_device
from trainwell.train.checkpoint import find_checkpoint, save_checkpoint
from trainwell.train.precision import Precision, check_precision


def cuda(fn):
    """A CUDA test: marked (``pytest -m cuda``) and skipped without a GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(),
                                               reason="needs CUDA")(fn))


def _data(n: int = 96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _trainer(precision, device="cpu", **kw):
    return Trainer(_model(), optimizer="adam", lr=0.01, device=device, seed=0,
                   precision=precision, callbacks=[NanGuard(check_every=1)], **kw)


def _fit_in_two_parts(precision, tmp_path, device="cpu"):
    """Train 4 epochs at once, and 2 + 2 through a checkpoint (``precision``: a name or a
    function making a fresh Precision)."""
    def make():
        return _trainer(precision() if callable(precision) else precision, device)

    x, y = _data()
    whole = make()
    whole.fit(x, y, epochs=4, batch_size=16)
    first = make()
    first.fit(x, y, epochs=2, batch_size=16)
    save_checkpoint(first.state_dict(), tmp_path / "last.pt")
    second = make()
    second.fit(x, y, epochs=4, batch_size=16, resume_from=tmp_path)
    return whole, first, second


def test_bf16_autocast_runs_the_forward_in_bfloat16():
    p = Precision("bf16", "cpu")
    with p.autocast():
        out = nn.Linear(4, 2)(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    with Precision("fp32", "cpu").autocast():
        assert nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.float32


def test_bf16_on_cpu_trains_and_resumes_exactly(tmp_path):
    whole, _, resumed = _fit_in_two_parts("bf16", tmp_path)
    fp32 = _trainer("fp32")
    fp32.fit(*_data(), epochs=4, batch_size=16)
    assert whole.history.epochs[-1]["loss"] < whole.history.epochs[0]["loss"]  # it learns
    # bf16 really ran: its losses are not fp32's (bfloat16 keeps 8 bits of mantissa)
    assert whole.history.epochs[-1]["loss"] != fp32.history.epochs[-1]["loss"]
    for k, v in whole.model.state_dict().items():
        assert v.dtype == torch.float32  # the weights stay float32
        assert torch.equal(resumed.model.state_dict()[k], v), k
    assert [r["loss"] for r in resumed.history.epochs] == \
        [r["loss"] for r in whole.history.epochs]
    assert resumed.precision.name == "bf16"


def _cpu_fp16(init_scale: float = 2.0 ** 16):
    p = Precision("fp16", "cpu", allow_cpu_fp16=True)  # the scaler's mechanics on a CPU
    p.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    return p


def test_fp16_scaler_skips_overflowing_steps_without_a_divergence():
    x, y = _data()
    t = _trainer(_cpu_fp16(2.0 ** 127))  # scaled gradients overflow → the step is skipped
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.fit(x[:16], y[:16], epochs=1, batch_size=16)
    assert t.status == "completed"  # NanGuard (every step) knows a skipped fp16 step
    assert t.precision.skipped_steps == 1
    assert t.precision.scaler.get_scale() == 2.0 ** 126  # halved
    for k, v in before.items():
        assert torch.equal(t.model.state_dict()[k], v)  # no update happened


def test_fp16_scaler_state_round_trips_through_the_checkpoint(tmp_path):
    x, y = _data()
    t = _trainer(_cpu_fp16(2.0 ** 127))
    t.fit(x, y, epochs=1, batch_size=16)
    save_checkpoint(t.state_dict(), tmp_path / "last.pt")
    _, state = find_checkpoint(tmp_path, map_location="cpu")  # weights_only load
    assert state["precision"]["scaler"]["scale"] == t.precision.scaler.get_scale()
    fresh = _trainer(_cpu_fp16())
    fresh.load_state_dict(state)
    assert fresh.precision.scaler.state_dict() == t.precision.scaler.state_dict()
    # 6 steps, each overflowing (2^127 … 2^122 are far beyond float16): 6 skips, 6 halvings
    assert fresh.precision.skipped_steps == t.precision.skipped_steps == 6
    assert fresh.precision.scaler.get_scale() == 2.0 ** 121


def test_fp16_resume_is_exact(tmp_path):
    whole, _, resumed = _fit_in_two_parts(_cpu_fp16, tmp_path)
    for k, v in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    assert resumed.precision.scaler.get_scale() == whole.precision.scaler.get_scale()


@pytest.mark.parametrize("name", ["fp8", "float16", "", None])
def test_unknown_precision_is_refused(name):
    with pytest.raises(ConfigError) as e:
        check_precision(name)
    assert e.value.field == "train.precision"


def test_fp16_on_a_cpu_is_refused_with_the_reason():
    with pytest.raises(ConfigError) as e:
        Trainer(_model(), device="cpu", precision="fp16")
    assert e.value.field == "train.precision"
    assert "bf16" in str(e.value) and "GPU" in str(e.value)


def test_cli_refuses_bad_precisions_before_any_folder(tmp_path):
    from typer.testing import CliRunner

    from trainwell.cli import app

    runner = CliRunner()
    for value, words in (('"fp8"', "fp32, bf16, fp16"), ('"fp16"', "fp32 or bf16 on a CPU")):
        res = runner.invoke(app, ["fit", "default", "--set", f"train.precision={value}",
                                  "--device", "cpu", "--out", str(tmp_path / "runs")])
        assert res.exit_code == 2, res.output
        assert "train.precision" in res.output and words in res.output
    assert not (tmp_path / "runs").exists()


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    import trainwell.train.device as tr

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(tr, "_mps_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(tr, "_mps_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    with pytest.raises(ConfigError):
        resolve_device("cuda")


@cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda_resumes_exactly(precision, tmp_path):
    whole, _, resumed = _fit_in_two_parts(precision, tmp_path, device="cuda")
    assert whole.history.epochs[-1]["loss"] < whole.history.epochs[0]["loss"]
    for k, v in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


@cuda
def test_cuda_trainer_uses_the_gpu_and_float32_metrics():
    t = _trainer("bf16", "cuda")
    t.fit(*_data(), epochs=2, batch_size=16, validation_data=_data(32))
    assert next(t.model.parameters()).is_cuda
    assert isinstance(t.history.epochs[-1]["val_loss"], float)
