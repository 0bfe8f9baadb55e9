"""MC dropout predictions, uncertainty flags, calibration (accuracy, NLL, ECE) and its report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from trainwell.errors import ConfigError
from trainwell.nn import build_model
from trainwell.uncertainty import (
    calibration,
    deterministic_predict,
    evaluate_uncertainty,
    mc_predict,
    plot_reliability,
    report_run_uncertainty,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one CPU thread is fastest, and steady on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _model(batch_norm: str = "before", dropout: float = 0.3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(input_shape=(6,), n_outputs=3, hidden=[32, 16], batch_norm=batch_norm,
                        dropout=dropout)
    if batch_norm != "none":
        model.train()
        for _ in range(3):            # running statistics away from their 0/1 start
            model(torch.randn(64, 6) * 2 + 1)
    return model.eval()


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running" in k or "num_batches" in k}


# --------------------------------------------------------------------------- mc_predict
def test_mc_dropout_keeps_batch_norm_in_eval_and_restores_modes():
    model = _model("before")
    before = _bn_state(model)
    model.train()                                   # a caller in train mode gets it back
    res = mc_predict(model, torch.randn(50, 6), n=20, seed=0)
    after = _bn_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)   # running stats untouched
    assert model.training and all(m.training for m in model.modules())
    assert res.mean.shape == res.std.shape == (50, 3)
    assert (res.std > 0).any()                      # dropout really was active
    torch.testing.assert_close(res.mean.sum(1), torch.ones(50))


def test_without_dropout_mc_equals_eval_mode_prediction_with_running_statistics():
    model = _model("after", dropout=0.0)
    x = torch.randn(40, 6)
    res = mc_predict(model, x, n=5, seed=0)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(x), 1)   # eval = running statistics
    torch.testing.assert_close(res.mean, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(res.std, torch.zeros_like(res.std))


def test_mc_dropout_is_reproducible_with_a_seed_and_leaves_the_global_rng_alone():
    model = _model()
    x = torch.randn(30, 6)
    torch.manual_seed(123)
    a = mc_predict(model, x, n=10, seed=7, batch_size=8)
    after_seeded = torch.rand(3)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    assert torch.equal(after_seeded, expected_next)   # caller's stream unchanged
    b = mc_predict(model, x, n=10, seed=7, batch_size=8)
    c = mc_predict(model, x, n=10, seed=8, batch_size=8)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.std, b.std)
    assert not torch.equal(a.mean, c.mean)
    assert not torch.equal(mc_predict(model, x, n=10).mean, mc_predict(model, x, n=10).mean)


def test_one_pass_is_one_dropout_sample_and_std_is_zero():
    model = _model(dropout=0.5)
    res = mc_predict(model, torch.randn(20, 6), n=1, seed=0)
    assert torch.equal(res.std, torch.zeros_like(res.std))
    assert not torch.allclose(res.mean, deterministic_predict(model, torch.randn(20, 6)))


def test_variance_of_the_mc_mean_shrinks_like_one_over_n():
    model = _model("none", dropout=0.5)
    x = torch.randn(16, 6)

    def spread(n: int) -> float:
        means = torch.stack([mc_predict(model, x, n=n, seed=s).mean for s in range(40)])
        return float(means.var(0).mean())

    v2, v8, v32 = spread(2), spread(8), spread(32)
    assert v2 > v8 > v32
    assert 8 < v2 / v32 < 32          # 1/N law: ratio 16
    # and the mean converges: N=256 is closer to N=1024 than N=4 is
    ref = mc_predict(model, x, n=1024, seed=99).mean
    err4 = (mc_predict(model, x, n=4, seed=1).mean - ref).abs().mean()
    err256 = (mc_predict(model, x, n=256, seed=1).mean - ref).abs().mean()
    assert err256 < err4 / 3


def test_entropy_mutual_information_and_uncertain_flags_follow_their_formulas():
    model = _model(dropout=0.4)
    x = torch.randn(64, 6) * 3
    res = mc_predict(model, x, n=25, seed=0, entropy_threshold=0.6)
    p = res.mean
    entropy = -(p * p.log()).sum(1)
    torch.testing.assert_close(res.entropy, entropy, rtol=1e-5, atol=1e-6)
    assert (res.mutual_info >= 0).all() and (res.mutual_info <= res.entropy + 1e-6).all()
    assert torch.equal(res.uncertain, entropy > 0.6 * math.log(3))
    assert res.max_entropy == pytest.approx(math.log(3))
    assert torch.equal(res.predicted, p.argmax(1))
    by_std = mc_predict(model, x, n=25, seed=0, entropy_threshold=None, std_threshold=0.05)
    spread = by_std.std.gather(1, by_std.predicted[:, None]).squeeze(1)
    assert torch.equal(by_std.uncertain, spread > 0.05)
    assert "std" in by_std.rule and "entropy" not in by_std.rule


def test_binary_and_regression_tasks():
    torch.manual_seed(0)
    binary = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1))
    res = mc_predict(binary, torch.randn(10, 4), n=8, seed=0, task="binary")
    p = res.mean.squeeze(1)
    torch.testing.assert_close(res.entropy, -(p * p.log() + (1 - p) * (1 - p).log()))
    assert res.max_entropy == pytest.approx(math.log(2))
    reg = mc_predict(binary, torch.randn(10, 4), n=8, seed=0, task="regression",
                     std_threshold=0.01)
    assert reg.entropy is None and reg.uncertain.dtype == torch.bool


def test_bad_arguments_are_config_errors():
    model = _model()
    with pytest.raises(ConfigError, match="mc"):
        mc_predict(model, torch.randn(3, 6), n=0)
    with pytest.raises(ConfigError, match="task"):
        mc_predict(model, torch.randn(3, 6), task="ranking")
    with pytest.raises(ConfigError, match="entropy_threshold"):
        mc_predict(model, torch.randn(3, 6), entropy_threshold=2.0)


# --------------------------------------------------------------------------- calibration
def test_calibration_matches_a_hand_computation():
    probs = torch.tensor([[0.90, 0.05, 0.05],   # conf .90, correct   bin (0.8, 1]
                          [0.85, 0.10, 0.05],   # conf .85, wrong     bin (0.8, 1]
                          [0.70, 0.20, 0.10],   # conf .70, correct   bin (0.6, 0.8]
                          [0.10, 0.65, 0.25],   # conf .65, correct   bin (0.6, 0.8]
                          [0.30, 0.25, 0.45],   # conf .45, correct   bin (0.4, 0.6]
                          [0.50, 0.20, 0.30]],  # conf .50, wrong     bin (0.4, 0.6]
                         dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    c = calibration(probs, y, n_bins=5)
    # ECE = Σ |B|/n·|acc − conf| = 2/6·(|.5−.875| + |1−.675| + |.5−.475|)
    assert c.ece == pytest.approx((0.375 + 0.325 + 0.025) / 3, abs=1e-12)
    assert c.mce == pytest.approx(0.375, abs=1e-12)
    assert c.accuracy == pytest.approx(4 / 6)
    nll = -sum(math.log(v) for v in (0.9, 0.1, 0.7, 0.65, 0.45, 0.3)) / 6
    assert c.nll == pytest.approx(nll, abs=1e-12)
    onehot = np.eye(3)[y.numpy()]
    assert c.brier == pytest.approx(((probs.numpy() - onehot) ** 2).sum(1).mean())
    assert c.bin_count == [0, 0, 2, 2, 2]
    assert c.bin_accuracy[2:] == pytest.approx([0.5, 1.0, 0.5])
    assert c.bin_confidence[2:] == pytest.approx([0.475, 0.675, 0.875])
    assert all(math.isnan(v) for v in c.bin_accuracy[:2])
    assert c.bin_edges == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    as_json = json.loads(json.dumps(c.as_dict(), allow_nan=False))
    assert as_json["bin_accuracy"][:2] == [None, None] and as_json["ece"] == c.ece


def test_binary_calibration_uses_the_predicted_class_confidence():
    c = calibration(torch.tensor([0.8, 0.3, 0.6, 0.95], dtype=torch.float64),
                    torch.tensor([1, 0, 0, 1]), n_bins=2)
    # confidences .8 .7 .6 .95 all in (0.5, 1]; 3 of 4 correct
    assert c.accuracy == pytest.approx(0.75)
    assert c.ece == pytest.approx(abs(0.75 - (0.8 + 0.7 + 0.6 + 0.95) / 4), abs=1e-12)
    assert c.nll == pytest.approx(-(math.log(.8) + math.log(.7) + math.log(.4)
                                    + math.log(.95)) / 4, abs=1e-12)


def test_a_perfectly_calibrated_predictor_has_near_zero_ece():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(200_000, generator=g, dtype=torch.float64) * 0.5 + 0.5
    correct = torch.rand(200_000, generator=g, dtype=torch.float64) < conf
    probs = torch.stack([conf, 1 - conf], 1)
    c = calibration(probs, (~correct).long(), n_bins=10)
    assert c.ece < 0.01
    overconfident = calibration(torch.stack([conf.clamp(max=0.99) * 0 + 0.99,
                                             conf * 0 + 0.01], 1), (~correct).long())
    assert overconfident.ece > 0.2


def test_evaluate_uncertainty_compares_with_and_without_mc(tmp_path):
    model = _model(dropout=0.3)
    x, y = torch.randn(120, 6), torch.randint(0, 3, (120,))
    rep = evaluate_uncertainty(model, x, y, mc=10, seed=0, n_bins=10)
    with torch.no_grad():
        direct = calibration(torch.softmax(model(x), 1), y, 10)
    assert rep.deterministic.ece == pytest.approx(direct.ece)
    assert rep.deterministic.accuracy == pytest.approx(direct.accuracy)
    assert rep.mc.nll == pytest.approx(calibration(rep.mc_result.mean, y, 10).nll)
    assert [r[0] for r in rep.table] == ["method", "no MC dropout", "MC dropout (N=10)"]
    assert rep.flagged == pytest.approx(float(rep.mc_result.uncertain.double().mean()))
    png = plot_reliability(rep.calibrations, tmp_path / "plots" / "rel.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


# --------------------------------------------------------------------------- runs
def _tiny_run(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(240, 6)).astype(np.float32)
    xt = rng.normal(size=(60, 6)).astype(np.float32)
    np.savez(tmp / "tiny.npz", x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))
    (tmp / "tiny.toml").write_text(
        'name = "tiny"\n[data]\ndataset = "{}"\nvalidation = 40\n[model]\nhidden = [16]\n'
        '[regularization]\ndropout = 0.3\n[train]\nepochs = 2\nbatch_size = 32\n'
        'device = "cpu"\n'.format((tmp / "tiny.npz").as_posix()))
    from trainwell.cli import app

    result = CliRunner().invoke(app, ["fit", str(tmp / "tiny.toml"), "--out",
                                      str(tmp / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp / "runs").iterdir()
    return run


def test_report_run_uncertainty_writes_plot_and_summary_section(tmp_path):
    run = _tiny_run(tmp_path)
    rep = report_run_uncertainty(run, mc=8, split="test")
    assert rep.mc.n == 60
    assert (run / "plots" / "reliability_test.png").is_file()
    sections = json.loads((run / "summary.json").read_text())["sections"]
    (section,) = [s for s in sections if s["title"] == "Calibration with MC dropout (test)"]
    assert section["table"] == rep.table
    assert "Calibration with MC dropout" in (run / "report.html").read_text()
    with pytest.raises(ConfigError, match="--split"):
        report_run_uncertainty(run, mc=8, split="dev")
