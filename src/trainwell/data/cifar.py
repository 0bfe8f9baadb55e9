"""CIFAR-10 "python version" batches: pickled dicts with ``b"data"`` (N×3072 uint8) and ``b"labels"``.

The format is a pickle, and a plain ``pickle.load`` runs whatever code a planted file names.
trainwell reads these files with a restricted unpickler that builds only what the official
files hold — dicts, lists, numbers, bytes and NumPy arrays — and refuses anything else (a
function or class to call) with a :class:`DataError`, before it could run. The archive is
downloaded with its pinned sha256; extraction records the sha256 of every file it wrote in
``SHA256SUMS`` beside them, and reading checks the files against it.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from trainwell.errors import DataError

__all__ = ["CIFAR10_TRAIN_BATCHES", "CIFAR10_TEST_BATCH", "read_cifar_batch",
           "read_cifar10", "extract_cifar10", "SHA256SUMS"]

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
SHA256SUMS = "SHA256SUMS"

# What the official batches (and NumPy arrays pickled by NumPy 1 or 2) need to be rebuilt.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "bytearray"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle's hook
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR-10 batch holds only "
                                     f"arrays, lists and numbers, never code to run")


def _unpickle(blob: bytes) -> object:
    # encoding="bytes": the batches were pickled by Python 2.
    return _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()


def _recorded_sums(folder: Path) -> dict[str, str]:
    try:
        lines = (folder / SHA256SUMS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    sums = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        if len(digest) == 64 and name:
            sums[name] = digest
    return sums


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file → ``(x uint8 (N, 3, 32, 32), y int64 (N,))``.

    Raises:
        DataError: naming the file when it is not a CIFAR batch.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
        expected = _recorded_sums(path.parent).get(path.name)
        if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
            raise DataError(f"{path}: its sha256 does not match the one recorded in "
                            f"{SHA256SUMS} when it was extracted (the file is damaged or was "
                            f"replaced); delete {path.parent} to download CIFAR-10 again")
        batch = _unpickle(blob)
        if not isinstance(batch, dict):
            raise TypeError(f"a {type(batch).__name__}, not a dict")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
            AttributeError, IndexError, MemoryError, UnicodeDecodeError) as exc:
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
    from trainwell.atomic import atomic_write

    dest = Path(root) / "cifar-10-batches-py"
    dest.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            # Only the known regular files, written by name: no path from the archive is trusted.
            if member.name in wanted and member.isfile():
                src = tar.extractfile(member)
                if src is None:
                    continue
                blob = src.read()
                atomic_write(dest / Path(member.name).name, blob)
                sums[Path(member.name).name] = hashlib.sha256(blob).hexdigest()
    atomic_write(dest / SHA256SUMS, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return dest
