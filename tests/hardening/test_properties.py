"""Property-based tests: generated recipes and data files, valid and broken.

Whatever a user writes, `trainwell fit` either trains, or prints exactly one `error:` line and
exits 2 — never a traceback, and a refused run leaves no run directory behind.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from trainwell.cli import app

FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
NIGHTLY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return "[" + ", ".join(_toml(v) for v in value) + "]"


numbers = st.one_of(st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=4), st.lists(st.integers(-1, 9), max_size=2))
FIELDS = {
    ("train", "epochs"): st.one_of(st.integers(-1, 2), numbers),
    ("train", "batch_size"): st.one_of(st.integers(-1, 64), numbers),
    ("train", "seed"): st.one_of(st.integers(-2, 2**66), numbers),
    ("train", "patience"): numbers,
    ("train", "checkpoint_every_steps"): numbers,
    ("optimizer", "name"): st.sampled_from(["sgd", "adam", "nadam", "rmsprop", "Adam", "nope", ""]),
    ("optimizer", "lr"): st.one_of(st.floats(-1, 2), numbers),
    ("optimizer", "momentum"): numbers,
    ("schedule", "name"): st.sampled_from(["onecycle", "exponential", "performance", "none",
                                           "warp"]),
    ("model", "hidden"): st.one_of(st.lists(st.integers(-2, 24), max_size=3), numbers),
    ("model", "activation"): st.sampled_from(["relu", "selu", "elu", "leaky_relu", "gelu", "x"]),
    ("model", "batch_norm"): st.sampled_from(["none", "before", "after", "middle"]),
    ("regularization", "dropout"): st.one_of(st.floats(-0.5, 1.5), numbers),
    ("regularization", "l2"): numbers,
    ("data", "validation"): st.one_of(st.integers(-5, 300), st.floats(-1, 2), numbers),
    ("data", "nonsense"): st.integers(),
}


@st.composite
def recipes(draw):
    chosen = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True))
    sections: dict[str, dict] = {"train": {"epochs": 1, "device": "cpu"}}
    for sec, key in chosen:
        sections.setdefault(sec, {})[key] = draw(FIELDS[(sec, key)])
    return sections


def _write_data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    path = folder / "d.npz"
    np.savez(path, x=x, y=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))
    return path


def _check(folder: Path, args: list[str]) -> None:
    out = folder / "runs"
    result = CliRunner().invoke(app, ["fit", *args, "--out", str(out), "--quiet"])
    text = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert "Traceback" not in text
    if result.exit_code == 2:
        assert len([ln for ln in text.splitlines() if ln.startswith("error:")]) == 1, text
        assert not out.exists() or not any(out.iterdir()), "a refused run left a folder"
    else:
        assert result.exit_code in (0, 1), text  # trained (1: it diverged, and said so)
        assert any(out.iterdir())


def _fit_recipe(sections) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        data = _write_data(folder)
        sections = {k: dict(v) for k, v in sections.items()}
        sections.setdefault("data", {}).setdefault("dataset", str(data))
        sections["data"].setdefault("validation", 0.2)
        lines = ['name = "generated"']
        for sec, fields in sections.items():
            lines.append(f"[{sec}]")
            lines += [f"{k} = {_toml(v)}" for k, v in fields.items()]
        (folder / "r.toml").write_text("\n".join(lines) + "\n")
        _check(folder, [str(folder / "r.toml")])


@FAST
@given(recipes())
def test_any_recipe_trains_or_is_one_error(sections):
    _fit_recipe(sections)


@st.composite
def arrays(draw, name):
    kind = draw(st.sampled_from(["float32", "int64", "uint8", "complex64", "bool", "str",
                                 "float64"]))
    shape = draw(st.tuples(st.integers(0, 24), st.integers(0, 5)) | st.tuples(st.integers(0, 24)))
    n = int(np.prod(shape)) if shape else 1
    if kind == "str":
        return np.array(draw(st.lists(st.text(max_size=2), min_size=n, max_size=n)),
                        dtype=str).reshape(shape)
    values = draw(st.lists(st.one_of(st.integers(-3, 12), st.floats(-1e3, 1e3),
                                     st.just(float("nan")), st.just(10**9)),
                           min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64).astype(kind).reshape(shape)


@st.composite
def data_files(draw):
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=64))  # not an archive at all
    names = draw(st.lists(st.sampled_from(["x", "y", "x_test", "y_test", "z"]), min_size=1,
                          unique=True))
    return {n: draw(arrays(n)) for n in names}


@FAST
@given(data_files())
def test_any_data_file_trains_or_is_one_error(content):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / "d.npz"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            np.savez(path, **content)
        (folder / "r.toml").write_text(f'name = "generated"\n[data]\ndataset = "{path}"\n'
                                       f'[model]\nhidden = [4]\n[train]\nepochs = 1\n'
                                       f'device = "cpu"\n')
        _check(folder, [str(folder / "r.toml")])


@FAST
@given(st.lists(st.tuples(st.sampled_from(sorted(f"{s}.{k}" for s, k in FIELDS)),
                          st.text(max_size=12)), max_size=3))
def test_any_set_override_trains_or_is_one_error(overrides):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        data = _write_data(folder)
        (folder / "r.toml").write_text(f'name = "g"\n[data]\ndataset = "{data}"\n'
                                       f'[train]\nepochs = 1\ndevice = "cpu"\n')
        args = [str(folder / "r.toml")]
        for field, value in overrides:
            args += ["--set", f"{field}={value}"]
        _check(folder, args)


@pytest.mark.nightly
@NIGHTLY
@given(recipes())
def test_any_recipe_trains_or_is_one_error_many(sections):
    _fit_recipe(sections)


@pytest.mark.nightly
@NIGHTLY
@given(data_files())
def test_any_data_file_trains_or_is_one_error_many(content):
    test_any_data_file_trains_or_is_one_error.hypothesis.inner_test(content)
