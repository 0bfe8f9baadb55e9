"""`trainwell compare` command line: bad input is named before anything is trained."""

from __future__ import annotations

from typer.testing import CliRunner

from trainwell.cli import app


def _run(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


def test_unknown_recipe_is_named_not_a_missing_vary(tmp_path):
    res = _run("nosuch_recipe", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "nosuch_recipe" in res.output and "--vary" not in res.output
    assert "Traceback" not in res.output
    assert not list(tmp_path.iterdir())


def test_missing_vary_says_what_to_give_without_none(tmp_path):
    res = _run("default", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "--vary" in res.output and "None" not in res.output


def test_bad_seeds_are_named_before_the_vary_check(tmp_path):
    res = _run("default", "--seeds", "a,b", "--out", str(tmp_path))
    assert res.exit_code == 2 and "--seeds" in res.output
    res = _run("--out", str(tmp_path))
    assert res.exit_code == 2 and "None" not in res.output
