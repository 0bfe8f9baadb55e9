"""`trainwell evaluate` and `trainwell predict` on a run trained by the CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import torch
from torch import nn

from trainwell.cli import app
from trainwell.cli.predict import predict_proba, prepare_inputs
from trainwell.run import load_run


def test_evaluate_matches_the_summary_test_metrics(runner, trained_run):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    summary = json.loads((trained_run / "summary.json").read_text())
    assert got["split"] == "test" and got["n"] == 60
    assert abs(got["accuracy"] - summary["metrics"]["final"]["test_accuracy"]) < 1e-9
    assert abs(got["loss"] - summary["metrics"]["final"]["test_loss"]) < 1e-6


def test_evaluate_accuracy_equals_a_direct_computation(runner, trained_run, tiny_dir):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--split", "val", "--json"])
    got = json.loads(result.stdout)
    loaded = load_run(trained_run)
    splits = loaded.splits_loader()
    with torch.no_grad():
        pred = loaded.model(splits.x_val).argmax(1)
    assert abs(got["accuracy"] - float((pred == splits.y_val).double().mean())) < 1e-12


def test_evaluate_rejects_a_bad_split_and_a_non_run(runner, trained_run, tmp_path):
    bad = runner.invoke(app, ["evaluate", str(trained_run), "--split", "dev"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --split")
    not_run = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert not_run.exit_code == 2 and "run directory" in not_run.stderr


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_predict_prints_probabilities_preprocessed_like_training(runner, trained_run, tiny_dir):
    result = runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz")])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    header, body = rows[0], rows[1:]
    assert header == ["predicted", "p0", "p1", "p2"]
    assert len(body) == 240
    probs = np.array([[float(v) for v in r[1:]] for r in body])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # oracle: the raw file standardized with the training statistics, through the model
    loaded = load_run(trained_run)
    splits = loaded.splits_loader()
    x_raw = np.load(tiny_dir / "tiny.npz")["x"]
    x = (torch.as_tensor(x_raw) - splits.mean) / splits.std
    with torch.no_grad():
        expected = torch.softmax(loaded.model(x), 1).numpy()
    np.testing.assert_allclose(probs, expected, atol=2e-6)
    assert [int(r[0]) for r in body] == list(expected.argmax(1))


def test_predict_mc_dropout_reports_mean_and_std(runner, trained_run, tiny_dir, tmp_path):
    out = tmp_path / "mc.npz"
    result = runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"),
                                 "--mc", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    z = np.load(out)
    assert z["probabilities"].shape == (240, 3) == z["std"].shape
    assert (z["std"] > 0).any()  # dropout really is on
    np.testing.assert_allclose(z["probabilities"].sum(1), 1.0, atol=1e-5)
    again = tmp_path / "mc2.npz"
    runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"), "--mc", "20",
                        "--out", str(again)])
    np.testing.assert_array_equal(np.load(again)["probabilities"], z["probabilities"])  # seeded


def test_predict_never_overwrites_the_output(runner, trained_run, tiny_dir, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("keep me")
    result = runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"),
                                 "--out", str(out)])
    assert result.exit_code == 2 and result.stderr.startswith("error: --out")
    assert out.read_text() == "keep me"


def test_predict_csv_input_drops_the_target_column(runner, trained_run, tiny_dir, tmp_path):
    x = np.load(tiny_dir / "tiny.npz")["x"][:5]
    path = tmp_path / "in.csv"
    lines = ["a,b,c,d,e,f,target"] + [",".join(f"{v:.9g}" for v in row) + ",1" for row in x]
    path.write_text("\n".join(lines) + "\n")
    via_csv = _rows(runner.invoke(app, ["predict", str(trained_run), str(path)]).stdout)
    np.savez(tmp_path / "in.npz", x=x)
    via_npz = _rows(runner.invoke(app, ["predict", str(trained_run),
                                        str(tmp_path / "in.npz")]).stdout)
    assert via_csv == via_npz and len(via_csv) == 6


def test_predict_wrong_feature_count_is_a_data_error(runner, trained_run, tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 5), dtype=np.float32))
    result = runner.invoke(app, ["predict", str(trained_run), str(tmp_path / "bad.npz")])
    assert result.exit_code == 2 and "expects" in result.stderr


def test_mc_dropout_keeps_batch_norm_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(8, 2))
    model.train()
    model(torch.randn(32, 4) * 3 + 1)  # give BN non-trivial running statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(10, 4)
    mean, std = predict_proba(model, x, mc=50, seed=1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # running stats not updated
    # oracle: BN in eval + dropout in train, averaged by hand with the same seed
    torch.manual_seed(1)
    model.eval()
    model[3].train()
    with torch.no_grad():
        samples = torch.stack([torch.softmax(model(x), 1) for _ in range(50)])
    torch.testing.assert_close(mean, samples.mean(0))
    torch.testing.assert_close(std, samples.std(0, unbiased=False))
    assert not model.training or True


def test_prepare_inputs_scales_reshapes_and_standardizes():
    stats = {"scale": 255.0, "input_shape": [2, 2], "mean": [[0.5, 0.5], [0.5, 0.5]],
             "std": [[0.25, 0.25], [0.25, 0.25]]}
    x = prepare_inputs(np.full((3, 4), 255, dtype=np.uint8), stats)
    assert x.shape == (3, 2, 2)
    torch.testing.assert_close(x, torch.full((3, 2, 2), 2.0))
