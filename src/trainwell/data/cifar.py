"""CIFAR-10 "python version" batches: pickled dicts with ``b"data"`` (N×3072 uint8) and ``b"labels"``.

The format is a pickle, so these files are only read from trainwell's data folder
(``<data_dir>/cifar-10-batches-py``), which the user or trainwell's checked download filled.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from trainwell.errors import DataError

__all__ = ["CIFAR10_TRAIN_BATCHES", "CIFAR10_TEST_BATCH", "read_cifar_batch",
           "read_cifar10", "extract_cifar10"]

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file → ``(x uint8 (N, 3, 32, 32), y int64 (N,))``.

    Raises:
        DataError: naming the file when it is not a CIFAR batch.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            # encoding="bytes": the batches were pickled by Python 2.
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path}: expected data of shape (N, 3072) and N labels, "
                        f"got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from a ``cifar-10-batches-py`` folder."""
    folder = Path(folder)
    parts = [read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = read_cifar_batch(folder / CIFAR10_TEST_BATCH)
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return x_train, y_train, x_test, y_test


def extract_cifar10(archive: str | Path, root: str | Path) -> Path:
    """Extract only the batch files of ``cifar-10-python.tar.gz`` into ``root/cifar-10-batches-py``."""
    wanted = {f"cifar-10-batches-py/{n}" for n in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH,
                                                  "batches.meta")}
    dest = Path(root) / "cifar-10-batches-py"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            # Only the known regular files, written by name: no path from the archive is trusted.
            if member.name in wanted and member.isfile():
                src = tar.extractfile(member)
                if src is None:
                    continue
                target = dest / Path(member.name).name
                tmp = target.with_suffix(".part")
                tmp.write_bytes(src.read())
                tmp.replace(target)
    return dest
