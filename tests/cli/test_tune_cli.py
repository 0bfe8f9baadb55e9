"""`trainwell tune` command line: bad input is refused before the search is announced."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trainwell.cli import app

pytest.importorskip("optuna")


def test_zero_trials_is_one_error_before_anything_is_printed(tmp_path):
    res = CliRunner().invoke(app, ["tune", "default", "--space", "learning_rate",
                                   "--trials", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "--trials" in res.output and "searching" not in res.output
    assert not list(tmp_path.iterdir())
