"""Image folders from the command line: `trainwell data info`, a streamed CNN fit with
augmentation, and one `error:` line (exit 2, no run folder) for each unusable folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from trainwell.cli import app

RECIPE = """\
name = "imgs"
[data]
dataset = "images"
path = "{path}"
validation = 6
stream = {stream}
[model]
kind = "cnn"
conv = [[4, 3], "pool"]
hidden = [8]
batch_norm = "before"
[augment]
flip = true
crop_padding = 1
[optimizer]
name = "adam"
lr = 0.01
[schedule]
name = "constant"
[train]
epochs = 2
batch_size = 8
device = "cpu"
"""


def _images(root: Path, classes=("cat", "dog"), n=8, size=(8, 8)) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, size).astype(np.uint8)).save(
                root / c / f"{i}.png")
    return root


def _fit(tmp_path: Path, root: Path, stream: str = "true"):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(path=root.as_posix(), stream=stream))
    out = tmp_path / "runs"
    return CliRunner().invoke(app, ["fit", str(recipe), "--out", str(out), "--quiet"]), out


def test_data_info_counts_classes_and_says_whether_it_streams(tmp_path):
    root = _images(tmp_path / "imgs", n=5)
    result = CliRunner().invoke(app, ["data", "info", str(root)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "cat: 5, dog: 5" in text and "(8, 8), uint8" in text
    assert 'streams no with data.stream = "auto"' in text


def test_a_streamed_cnn_fit_records_the_streamed_dataset(tmp_path):
    result, out = _fit(tmp_path, _images(tmp_path / "imgs"))
    assert result.exit_code == 0, result.output
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"]["streamed"] is True
    assert summary["dataset"]["class_names"] == ["cat", "dog"]


def _corrupt(root):
    (root / "dog" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return "dog/3.png: not a readable image"


def _mixed(root):
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(root / "dog" / "9.png")
    return "dog/9.png: image of shape (9, 8)"


def _empty_class(root):
    (root / "bird").mkdir()
    (root / "bird" / "notes.txt").write_text("no images here")
    return "the class folder"


@pytest.mark.parametrize("make, says", [
    (lambda root: (root.mkdir(parents=True), "has no class folders")[1], None),
    (lambda root: (_images(root, classes=("cat",)), "has one class folder")[1], None),
    (lambda root: _corrupt(_images(root)), None),
    (lambda root: _mixed(_images(root)), None),
    (lambda root: _empty_class(_images(root)), None),
], ids=["empty folder", "one class", "corrupt png", "mixed sizes", "class without images"])
def test_an_unusable_image_folder_is_one_error_line(tmp_path, make, says):
    root = tmp_path / "imgs"
    expected = make(root)
    result, out = _fit(tmp_path, root)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 2 and lines[0].startswith("error: "), result.output
    assert expected in " ".join(result.output.split())
    assert not out.exists() or not any(out.iterdir())   # nothing made before the data is good


def test_bad_stream_value_and_flip_on_vectors_are_field_errors(tmp_path):
    root = _images(tmp_path / "imgs")
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(path=root.as_posix(), stream='"sometimes"'))
    result = CliRunner().invoke(app, ["fit", str(recipe), "--quiet"])
    assert result.exit_code == 2 and "data.stream" in result.output
    recipe.write_text(RECIPE.format(path=root.as_posix(), stream="false")
                      .replace('kind = "cnn"\nconv = [[4, 3], "pool"]\n', "")
                      .replace("[data]\n", "[data]\nflatten = true\n"))
    result = CliRunner().invoke(app, ["fit", str(recipe), "--quiet", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: augment.flip"), result.output
