import io
import pickle
import tarfile

import numpy as np
import pytest

from trainwell.data.cifar import extract_cifar10, read_cifar10, read_cifar_batch
from trainwell.errors import DataError


def _batch(n, offset=0):
    data = ((np.arange(n * 3072) + offset) % 256).astype(np.uint8).reshape(n, 3072)
    labels = [(i + offset) % 10 for i in range(n)]
    # Python 2 pickles have bytes keys; protocol 2 as in the official files.
    return pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"x"}, protocol=2)


def test_cifar_batch_is_read_as_channels_first_images(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(_batch(3))
    x, y = read_cifar_batch(path)
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8
    assert y.tolist() == [0, 1, 2] and y.dtype == np.int64
    # Row layout of the format: 1024 red, then 1024 green, then 1024 blue values.
    flat = np.arange(3 * 3072) % 256
    np.testing.assert_array_equal(x[0, 1].reshape(-1), flat[1024:2048])


def test_cifar_folder_and_archive_extraction(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for k, name in enumerate(names):
            blob = _batch(2, offset=k)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        evil = tarfile.TarInfo("../evil")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    root = tmp_path / "root"
    folder = extract_cifar10(archive, root)
    assert folder == root / "cifar-10-batches-py"
    assert not (tmp_path / "evil").exists()
    x_tr, y_tr, x_te, y_te = read_cifar10(folder)
    assert x_tr.shape == (10, 3, 32, 32) and x_te.shape == (2, 3, 32, 32)
    assert y_tr.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5] and y_te.tolist() == [5, 6]


def test_not_a_cifar_batch_is_a_data_error(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"something": 1}))
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(path)
