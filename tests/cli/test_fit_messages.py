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
