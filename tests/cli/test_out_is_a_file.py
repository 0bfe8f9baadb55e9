"""`--out` naming an existing file: one `--out` error, exit code 2, before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trainwell.cli import app


@pytest.mark.parametrize("args", [
    ["lr-find", "default", "--steps", "5"],
    ["diagnose", "default", "--steps", "5"],
    ["tune", "default", "--space", "learning_rate", "--trials", "1"],
    ["compare", "default", "--vary", "model.activation=relu,elu"],
])
def test_out_that_is_a_file_is_one_error(tmp_path, args):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    res = CliRunner().invoke(app, [*args, "--out", str(f)])
    assert res.exit_code == 2, res.output
    assert "--out" in res.output and "Traceback" not in res.output
    assert f.read_text() == "keep me"


def test_fit_out_that_is_a_file_is_one_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    res = CliRunner().invoke(app, ["fit", "low_latency", "--out", str(f)])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --out") and "that path is a file" in res.stderr
    assert "Traceback" not in res.output and f.read_text() == "keep me"


def test_new_run_dir_refuses_a_file_or_a_path_below_one(tmp_path):
    from trainwell.errors import ConfigError
    from trainwell.run import new_run_dir

    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    for out in (f, f / "sub"):
        with pytest.raises(ConfigError) as info:
            new_run_dir(out, "x")
        assert info.value.field == "--out" and "is a file" in str(info.value)
    assert new_run_dir(tmp_path / "runs", "x").is_dir()
