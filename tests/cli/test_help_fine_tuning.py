"""Help of lr-find, tune and compare: examples, and metavars a person can read."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from trainwell.cli import app


@pytest.mark.parametrize("command, example", [
    ("lr-find", "trainwell lr-find default"),
    ("tune", "trainwell tune default --space fashion_mlp"),
    ("compare", "trainwell compare default --vary"),
])
def test_help_has_examples_and_readable_metavars(command, example):
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = res.output
    assert "Examples" in text and example in text
    (set_line,) = [line for line in text.splitlines() if re.match(r"│\s+--set\b", line)]
    assert "SECTION.FIELD=VALUE" in set_line and "list[str]" not in set_line
    assert "RECIPE" in text
