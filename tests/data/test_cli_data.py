import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from trainwell.cli.data import register
from trainwell.data import builtin, download


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)

    @app.callback()
    def main():  # a callback keeps "data" as a sub-command
        pass

    return app


def test_info_of_an_absent_dataset_says_where_and_how(app, tmp_path):
    res = CliRunner().invoke(app, ["data", "info", "mnist", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0
    assert "no — run `trainwell data fetch mnist`" in res.output
    assert "mnist" in res.output and "CC BY-SA 3.0" in res.output


def test_fetch_failure_prints_one_error_line_and_exits_2(app, tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise OSError("offline")
    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)
    monkeypatch.setattr(builtin.shutil, "which", lambda name: None)
    res = CliRunner().invoke(app, ["data", "fetch", "fashion_mnist", "--data-dir", str(tmp_path), "-q"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: dataset 'fashion_mnist' is not available")
    assert "Traceback" not in res.output


def test_unknown_dataset_lists_valid_names(app):
    res = CliRunner().invoke(app, ["data", "info", "imagenet"])
    assert res.exit_code == 2
    assert "fashion_mnist, mnist, cifar10" in res.stderr


def test_info_of_a_user_file_shows_task_and_counts(app, tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((6, 3), np.float32), y=np.array([0, 1, 1, 2, 2, 2]))
    res = CliRunner().invoke(app, ["data", "info", str(path)])
    assert res.exit_code == 0, res.output
    assert "multiclass (3 outputs)" in res.output and "0: 1, 1: 2, 2: 3" in res.output


def test_list_shows_every_dataset(app):
    res = CliRunner().invoke(app, ["data", "list"])
    assert res.exit_code == 0
    for name in ("fashion_mnist", "mnist", "cifar10", "npz", "csv"):
        assert name in res.output


def test_info_of_a_file_of_another_type_names_the_file_types_read(app, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    res = CliRunner().invoke(app, ["data", "info", str(f)])
    assert res.exit_code == 2
    assert ".npz" in res.output and ".csv" in res.output and "notes.txt" in res.output
    assert "fashion_mnist" in res.output
