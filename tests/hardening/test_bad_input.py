"""Bad input: one `error:` line, exit 2, no traceback, no run directory left behind."""

from __future__ import annotations

import importlib.util as _ilu
from pathlib import Path as _Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trainwell.cli import app

_spec = _ilu.spec_from_file_location("hardening_helpers", _Path(__file__).with_name("_helpers.py"))
_h = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(_h)
write_recipe = _h.write_recipe

UNWRITABLE = "/proc/trainwell-cannot-write-here"


def _refused(result, *needles: str) -> str:
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text and "Aborted" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, text
    for n in needles:
        assert n in text, text
    return errors[0]


def _fit(tmp_path, *args):
    out = tmp_path / "runs"
    res = CliRunner().invoke(app, ["fit", *args, "--out", str(out), "--quiet"])
    return res, out


def _no_run(out):
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("case, override, needles", [
    ("huge label", {"y": np.array([0, 1, 2, 10**9] * 60)}, ["1000000000", "100000 classes"]),
    ("x_test width", {"x_test": np.zeros((40, 7), np.float32)}, ["x_test", "(7,)", "(6,)"]),
])
def test_npz_contents_are_checked_before_any_folder(tmp_path, case, override, needles):
    recipe = write_recipe(tmp_path, **override)
    res, out = _fit(tmp_path, str(recipe))
    _refused(res, *needles)
    _no_run(out)


@pytest.mark.parametrize("content, needle", [(b"", "empty (0 bytes)"),
                                             (b"PK\x03\x04" + b"garbage" * 30, "BadZipFile"),
                                             (b"not an archive" * 10, "not a readable .npz")])
def test_unreadable_npz_files_are_one_error(tmp_path, content, needle):
    recipe = write_recipe(tmp_path)
    (tmp_path / "tiny.npz").write_bytes(content)
    res, out = _fit(tmp_path, str(recipe))
    _refused(res, needle, "tiny.npz")
    _no_run(out)


@pytest.mark.parametrize("args, needles", [
    (["--seed", "99999999999999999999"], ["train.seed", "9223372036854775807"]),
    (["--set", "train.epochs=true"], ["train.epochs", "True"]),
    (["--set", "train.batch_size=false"], ["train.batch_size"]),
    (["--set", "optimizer.lr=true"], ["optimizer.lr"]),
    (["--set", "model.hidden=[1000000,1000000]"], ["model.hidden", "fits in memory", "GB"]),
])
def test_bad_values_are_refused_before_training(tmp_path, args, needles):
    recipe = write_recipe(tmp_path)
    res, out = _fit(tmp_path, str(recipe), *args)
    _refused(res, *needles)
    _no_run(out)


def test_fit_into_an_unwritable_out_is_one_error(tmp_path):
    recipe = write_recipe(tmp_path)
    res = CliRunner().invoke(app, ["fit", str(recipe), "--out", UNWRITABLE, "--quiet"])
    _refused(res, "--out")


# ----------------------------------------------------------------- predict / export
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("trained")
    recipe = write_recipe(d, epochs=1)
    res = CliRunner().invoke(app, ["fit", str(recipe), "--out", str(d / "runs"), "--quiet"])
    assert res.exit_code == 0, res.output
    (run,) = (d / "runs").iterdir()
    return run


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.array([["a"] * 6] * 3)}, "<U1 values"),
    ({"x": np.zeros((0, 6), np.float32)}, "no examples"),
    ({"x": np.ones((3, 6)) + 1j}, "complex"),
    ({"a": np.ones((3, 6)), "b": np.ones((3, 6))}, "no array 'x'"),
])
def test_predict_refuses_unusable_inputs(run, tmp_path, arrays, needle):
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    _refused(CliRunner().invoke(app, ["predict", str(run), str(path)]), needle)


def test_predict_says_which_single_array_it_used(run, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, features=np.ones((2, 6), np.float32))
    res = CliRunner().invoke(app, ["predict", str(run), str(path)])
    assert res.exit_code == 0, res.output
    assert "using its only array 'features'" in res.output


def test_predict_and_export_to_an_unwritable_out_are_one_error(run, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, x=np.ones((2, 6), np.float32))
    _refused(CliRunner().invoke(app, ["predict", str(run), str(path), "--out",
                                      f"{UNWRITABLE}/p.csv"]), "--out")
    _refused(CliRunner().invoke(app, ["export", str(run), "--out", UNWRITABLE, "--quiet"]),
             "--out")


def test_damaged_model_gives_an_error_not_nan_results(run, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    weights = copy / "model" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5:-1] = np.float32("nan").tobytes()
    weights.write_bytes(bytes(blob))
    path = tmp_path / "in.npz"
    np.savez(path, x=np.ones((2, 6), np.float32))
    _refused(CliRunner().invoke(app, ["predict", str(copy), str(path)]), "damaged")
    _refused(CliRunner().invoke(app, ["evaluate", str(copy)]), "damaged")
