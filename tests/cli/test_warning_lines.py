"""trainwell's warnings on the command line: one plain `warning: ...` line, no source path.

Python users still get real, filterable warnings of trainwell's categories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import pytest

from trainwell.cli import app
from trainwell.cli.console_warnings import one_line_warnings, warning_line
from trainwell.errors import CheckpointFallbackWarning, TrainwellRuntimeWarning, TrainwellWarning
from trainwell.nn import SelfNormalizationWarning

SELU_WITH_HE = ["--set", "model.activation=selu", "--set", "model.init=he"]


def _single_warning_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("warning: "), stderr
    assert ".py" not in stderr and "Warning:" not in stderr, stderr  # no path, no category
    return lines[0]


def test_selu_warning_is_one_plain_line_in_the_cli(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), *SELU_WITH_HE,
                                 "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    line = _single_warning_line(result.stderr)
    assert line.startswith("warning: this SELU network will not self-normalize: the init is he")


def test_checkpoint_fallback_warning_is_one_plain_line_in_the_cli(runner, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "last.pt").write_bytes(b"damaged")
    result = runner.invoke(app, ["fit", "--resume", str(run), "--set", "train.epochs=4",
                                 "--force-resume", "--quiet"])
    assert result.exit_code == 0, result.output
    line = _single_warning_line(result.stderr)
    assert line.startswith("warning: skipping checkpoint ")
    assert line.endswith("falling back to the previous one")


WARN_COMMAND = """
import sys, warnings
from trainwell.cli import app, main
from trainwell.errors import CheckpointFallbackWarning

@app.command("warn-once")
def warn_once() -> None:
    warnings.warn("skipping checkpoint last.pt; falling back", CheckpointFallbackWarning)
    warnings.warn("a library's own warning", UserWarning)

main(sys.argv[1:])
"""


def test_the_console_script_entry_point_prints_the_same_line():
    # main() in its own process: Python's warning machinery writes the real stderr.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-c", WARN_COMMAND, "warn-once"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "warning: skipping checkpoint last.pt; falling back"
    # another library's warning keeps Python's format: path, line, category
    assert lines[1].endswith("UserWarning: a library's own warning") and ":" in lines[1]


def test_python_users_get_real_warnings_they_can_filter(tmp_path):
    from trainwell.train.checkpoint import find_checkpoint, save_checkpoint

    save_checkpoint({"step": 1}, tmp_path / "last.pt")
    save_checkpoint({"step": 2}, tmp_path / "last.pt")
    (tmp_path / "last.pt").write_bytes(b"damaged")
    with pytest.warns(CheckpointFallbackWarning, match="falling back") as caught:
        assert find_checkpoint(tmp_path)[1]["step"] == 1
    # still the RuntimeWarning it always was, and one of trainwell's
    assert issubclass(caught[0].category, RuntimeWarning)
    assert issubclass(caught[0].category, TrainwellWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", TrainwellWarning)  # one filter silences them all
        assert find_checkpoint(tmp_path)[1]["step"] == 1
    assert issubclass(SelfNormalizationWarning, TrainwellWarning)
    assert issubclass(SelfNormalizationWarning, UserWarning)


def test_only_the_cli_changes_the_display_and_only_for_trainwell(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda *args: shown.append(args))
    with one_line_warnings():
        warnings.showwarning(TrainwellRuntimeWarning("compile failed"), TrainwellRuntimeWarning,
                             "/x/y.py", 7)
        warnings.showwarning(SelfNormalizationWarning("not lecun"), SelfNormalizationWarning,
                             "/x/y.py", 8)
        warnings.showwarning(UserWarning("torch says"), UserWarning, "/x/y.py", 9)
    assert capsys.readouterr().err == "warning: compile failed\nwarning: not lecun\n"
    # another library's warning goes to the display that was there before, untouched
    assert len(shown) == 1 and shown[0][1] is UserWarning and shown[0][2:4] == ("/x/y.py", 9)
    # and outside the CLI nothing is changed
    warnings.showwarning(TrainwellRuntimeWarning("x"), TrainwellRuntimeWarning, "/x/y.py", 10)
    assert len(shown) == 2 and capsys.readouterr().err == ""


def test_a_cli_run_restores_the_warning_display(runner):
    previous = warnings.showwarning
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    assert warnings.showwarning is previous


def test_a_multiline_message_stays_on_one_line():
    assert warning_line(TrainwellWarning("first;\n  second")) == "warning: first; second\n"
