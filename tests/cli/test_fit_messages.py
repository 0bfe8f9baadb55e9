"""What `trainwell fit` prints at the end: each message once, in plain words."""

from __future__ import annotations

from trainwell.cli import app

DIVERGE = ["--set", "optimizer.name=sgd", "--set", "optimizer.lr=1e30",
           "--set", "schedule.name=constant"]


def test_diverged_fit_says_why_once_and_exits_1(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 *DIVERGE])
    assert result.exit_code == 1, result.output
    assert "status: diverged — training diverged at step" in result.stdout
    assert result.output.count("training diverged at step") == 1
    assert "error:" not in result.stderr


def test_interrupted_fit_status_line_says_how_to_continue(runner, tiny_dir, tmp_path,
                                                          monkeypatch):
    import trainwell.run as run_mod

    def fake_fit(recipe, **kwargs):
        return run_mod.RunResult(tmp_path / "r", None, None, None, [],
                                 {"name": "tiny", "status": "interrupted",
                                  "message": run_mod._status_message("interrupted", None),
                                  "metrics": {"final": {}}})

    monkeypatch.setattr(run_mod, "fit_recipe", fake_fit)
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml")])
    assert result.exit_code == 130
    want = f"status: interrupted — continue with `trainwell fit --resume {tmp_path / 'r'}`"
    assert " ".join(want.split()) in " ".join(result.stdout.split())  # however rich wraps it
    assert result.output.count("--resume") == 1  # not repeated on stderr
    assert "interrupted; continue" not in result.output


def test_fit_diagnose_prints_the_network_verdict_in_the_terminal(runner, tiny_dir, tmp_path):
    import json

    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--set", "train.epochs=1", "--diagnose",
                                 "--set", "train.diagnose_every=2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (run,) = list(tmp_path.iterdir())
    network = json.loads((run / "diagnostics" / "verdict.json").read_text())["network"]
    out = result.stdout
    assert f"Network verdict: {network.upper()}" in out
    assert out.index("Network verdict:") < out.index("status: ")  # after the final table
    diagnosis = json.loads((run / "summary.json").read_text())["diagnosis"]  # data, not text
    assert diagnosis["verdict"] == network
    assert diagnosis["headline"].startswith(f"Network verdict: {network.upper()}")
    assert diagnosis["healthy"] == (network == "healthy")


def test_diagnosis_lines_are_the_verdict_and_the_first_remedy():
    from trainwell.cli.fit import diagnosis_lines
    from trainwell.diagnose import Diagnosis
    from trainwell.report.diagnostics import verdict_summary

    class Exploding(Diagnosis):  # the lines a diagnosis writes, without a training run
        def __init__(self):
            self.network, self.problems = "exploding", ["exploding"]

        def text(self):
            return ("Network verdict: EXPLODING (40 samples, steps 0–390).\n"
                    "- exploding in dense_1, dense_2 (e.g. gradient norm grows 30× per layer).")

    summary = {"diagnosis": verdict_summary(Exploding())}
    lines = diagnosis_lines(summary)
    assert lines[0] == "Network verdict: EXPLODING (40 samples, steps 0–390)."
    assert lines[1].startswith("Clip the gradients")
    assert summary["diagnosis"]["healthy"] is False
    assert diagnosis_lines({"sections": []}) == []


def test_resume_with_fewer_epochs_than_trained_is_refused(runner, trained_run, tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    done = json.loads((run / "summary.json").read_text())["epochs_run"]
    recipe_before = (run / "recipe.toml").read_text()
    for epochs in (1, done - 1):
        result = runner.invoke(app, ["fit", "--resume", str(run), "--set",
                                     f"train.epochs={epochs}", "--force-resume"])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: train.epochs: received {epochs}")
        assert f"already trained {done} epochs" in result.stderr
        assert "larger train.epochs" in result.stderr and "completed" not in result.output
    assert (run / "recipe.toml").read_text() == recipe_before  # nothing touched
    assert not (run / "recipe.before-resume.toml").exists()
    more = runner.invoke(app, ["fit", "--resume", str(run), "--set",
                               f"train.epochs={done + 1}", "--force-resume", "--quiet"])
    assert more.exit_code == 0, more.output
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == done + 1
