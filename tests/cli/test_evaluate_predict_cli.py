"""`trainwell evaluate` and `trainwell predict` on a run trained by the CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
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
    # oracle: BN in eval + dropout in train, the 50 passes drawn as one stacked batch (as
    # trainwell.uncertainty.mc_predict does) with the same seed, averaged by hand
    torch.manual_seed(1)
    model.eval()
    model[3].train()
    with torch.no_grad():
        samples = torch.softmax(model(x.repeat(50, 1)), 1).reshape(50, 10, 2)
    torch.testing.assert_close(mean, samples.mean(0))
    torch.testing.assert_close(std, samples.std(0, unbiased=False))


def test_predict_mc_adds_entropy_and_uncertain_columns(runner, trained_run, tiny_dir):
    result = runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"),
                                 "--mc", "30", "--seed", "3"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows[0] == ["predicted", "p0", "p1", "p2", "std_p0", "std_p1", "std_p2",
                       "entropy", "uncertain"]
    p = np.array([[float(v) for v in r[1:4]] for r in rows[1:]])
    entropy = np.array([float(r[7]) for r in rows[1:]])
    flags = np.array([r[8] == "1" for r in rows[1:]])
    # oracle: H(p̄) = −Σ p̄ log p̄; flagged when above half the maximum entropy log 3
    expected = -(p * np.log(np.clip(p, 1e-12, 1))).sum(1)
    np.testing.assert_allclose(entropy, expected, atol=5e-5)
    clear = np.abs(expected - 0.5 * np.log(3)) > 1e-4
    np.testing.assert_array_equal(flags[clear], (expected > 0.5 * np.log(3))[clear])
    assert "flagged uncertain" in result.stderr


def test_predict_mc_npz_holds_the_shared_mc_predict_result(runner, trained_run, tiny_dir,
                                                           tmp_path):
    from trainwell.uncertainty import mc_predict

    out = tmp_path / "u.npz"
    result = runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"),
                                 "--mc", "25", "--seed", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    z = np.load(out)
    loaded = load_run(trained_run)
    x = prepare_inputs(np.load(tiny_dir / "tiny.npz")["x"],
                       loaded.model_info["extra"]["data"])
    res = mc_predict(loaded.model, x, n=25, seed=7, task="multiclass")
    np.testing.assert_allclose(z["probabilities"], res.mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(z["entropy"], res.entropy.numpy(), atol=1e-6)
    np.testing.assert_array_equal(z["uncertain"], res.uncertain.numpy())
    plain = tmp_path / "plain.npz"
    runner.invoke(app, ["predict", str(trained_run), str(tiny_dir / "tiny.npz"),
                        "--out", str(plain)])
    assert "entropy" not in np.load(plain).files  # only with --mc


def test_evaluate_mc_scores_calibration_with_and_without_mc_dropout(runner, trained_run):
    from trainwell.uncertainty import mc_predict

    result = runner.invoke(app, ["evaluate", str(trained_run), "--mc", "20", "--seed", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    # without MC: the same numbers as the plain evaluation (NLL = the cross-entropy loss)
    assert abs(got["deterministic"]["accuracy"] - got["accuracy"]) < 1e-9
    assert abs(got["deterministic"]["nll"] - got["loss"]) < 1e-4
    # with MC: oracle from the shared mc_predict with the same passes and seed
    loaded = load_run(trained_run)
    splits = loaded.splits_loader()
    res = mc_predict(loaded.model, splits.x_test, n=20, seed=2)
    acc = float((res.mean.argmax(1) == splits.y_test).double().mean())
    nll = float(-torch.log(res.mean.gather(1, splits.y_test[:, None]).clamp_min(1e-12)).mean())
    assert abs(got["mc"]["accuracy"] - acc) < 1e-9 and abs(got["mc"]["nll"] - nll) < 1e-4
    assert 0 <= got["mc"]["ece"] <= 1 and 0 <= got["deterministic"]["ece"] <= 1
    assert got["flagged"] == pytest.approx(float(res.uncertain.double().mean()))
    plot = trained_run / "plots" / "reliability_test.png"
    assert got["reliability_plot"] == str(plot) and plot.is_file()
    titles = [s["title"] for s in json.loads((trained_run / "summary.json").read_text())
              ["sections"]]
    assert "Calibration with MC dropout (test)" in titles


def test_evaluate_mc_prints_the_table_and_the_plot(runner, trained_run):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--mc", "10",
                                 "--split", "val"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for word in ("accuracy", "NLL", "ECE", "no MC dropout", "MC dropout (N=10)",
                 "flagged", "reliability_val.png"):
        assert word in text, word


def test_evaluate_mc_on_a_regression_run_needs_a_classification_task(runner, tmp_path,
                                                                      tiny_dir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", x=x, y=x.sum(1), x_test=x[:20], y_test=x[:20].sum(1))
    recipe = tmp_path / "reg.toml"
    recipe.write_text(f"""name = "reg"
[data]
dataset = "{(tmp_path / "reg.npz").as_posix()}"
validation = 20
[model]
hidden = [4]
[regularization]
dropout = 0.2
[train]
epochs = 1
device = "cpu"
""")
    fit = runner.invoke(app, ["fit", str(recipe), "--out", str(tmp_path / "runs"), "--quiet"])
    assert fit.exit_code == 0, fit.output
    (run,) = list((tmp_path / "runs").iterdir())
    result = runner.invoke(app, ["evaluate", str(run), "--mc", "5"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --mc") and "classification task" in result.stderr
    assert not (run / "plots" / "reliability_test.png").exists()


def test_prepare_inputs_scales_reshapes_and_standardizes():
    stats = {"scale": 255.0, "input_shape": [2, 2], "mean": [[0.5, 0.5], [0.5, 0.5]],
             "std": [[0.25, 0.25], [0.25, 0.25]]}
    x = prepare_inputs(np.full((3, 4), 255, dtype=np.uint8), stats)
    assert x.shape == (3, 2, 2)
    torch.testing.assert_close(x, torch.full((3, 2, 2), 2.0))


def test_evaluate_table_title_stays_on_one_line_with_the_count_in_the_caption(runner,
                                                                             trained_run):
    result = runner.invoke(app, ["evaluate", str(trained_run)])
    assert result.exit_code == 0, result.output
    lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
    name = load_run(trained_run).recipe.name
    assert lines[0] == f"{name} — test"  # the title alone: nothing left to wrap
    assert "60 examples" in lines and "examples)" not in result.stdout
