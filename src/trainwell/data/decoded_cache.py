"""Decoded copies of the built-in datasets, so that a second run opens them in milliseconds.

Decompressing Fashion-MNIST's gzip files takes about half a second, every run; a study of many
short runs pays it each time. The first run keeps the decoded arrays as ``.npy`` files in
``$TRAINWELL_CACHE/decoded`` (default: ``decoded`` in trainwell's user cache folder, see
:func:`trainwell.data.cache.user_cache_dir`; never inside the data folder, which may be shared
or read-only); later runs map them into memory (``np.load(mmap_mode="r")``).

An entry is keyed by the dataset, the folder and the size and modification time of each source
file: a replaced or edited file is decoded again. An entry is written to a temporary folder and
renamed into place, so two processes racing never leave a half-written entry, and one that
cannot be read back as it was written (truncated, edited, a different shape) is ignored and
written again. A cache that cannot be written (read-only home, full disk) only costs the
decoding. Delete the folder any time to reclaim the space (about 55 MB per MNIST-sized dataset).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["MIN_BYTES", "decoded_cache_dir", "source_stamp", "cached_arrays"]

_FORMAT = 1
#: Source files smaller than this in all are decoded every time (it is as quick as the cache).
MIN_BYTES = 1_000_000
_NAMES = ("x_train", "y_train", "x_test", "y_test")


def decoded_cache_dir() -> Path:
    """``$TRAINWELL_CACHE/decoded`` when set, else ``decoded`` in the user cache folder."""
    from trainwell.data.cache import trainwell_cache_dir

    return trainwell_cache_dir("decoded")


def source_stamp(files: Sequence[Path]) -> list[list]:
    """What identifies the source files' content cheaply: name, size and mtime of each."""
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out


def _entry(name: str, stamp: list[list]) -> tuple[Path, dict]:
    key = {"format": _FORMAT, "dataset": name, "files": stamp}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return decoded_cache_dir() / f"{name}-{digest}", key


def _read(folder: Path, key: dict) -> list[np.ndarray] | None:
    """The arrays of a complete entry written for ``key``, else None."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        arrays = []
        for n in _NAMES:
            a = np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False)
            if list(a.shape) != meta["shapes"][n] or str(a.dtype) != meta["dtypes"][n]:
                return None
            arrays.append(a)
        return arrays
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None  # missing, truncated or foreign: decode again


def _write(folder: Path, key: dict, arrays: Sequence[np.ndarray]) -> None:
    """Write the entry into a temporary folder beside it, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        named = dict(zip(_NAMES, arrays, strict=True))
        for n, a in named.items():
            np.save(tmp / f"{n}.npy", np.ascontiguousarray(a), allow_pickle=False)
        meta = {"key": key, "shapes": {n: list(a.shape) for n, a in named.items()},
                "dtypes": {n: str(a.dtype) for n, a in named.items()}}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # last: complete
        if folder.exists():  # a broken entry (a good one would have been read)
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process put its (identical) entry there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_older(folder, key)


def _remove_older(folder: Path, key: dict) -> None:
    """Drop entries of the same dataset and folder made from files that have changed since,
    and temporary folders a killed process left (older than an hour)."""
    paths = {f[0] for f in key["files"]}
    for tmp in folder.parent.glob(f".{key['dataset']}-*"):
        try:
            if time.time() - tmp.stat().st_mtime > 3600:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            continue
    for other in folder.parent.glob(f"{key['dataset']}-*"):
        if other == folder:
            continue
        try:
            meta = json.loads((other / "meta.json").read_text(encoding="utf-8"))
            if {f[0] for f in meta["key"]["files"]} == paths:
                shutil.rmtree(other, ignore_errors=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue


def cached_arrays(name: str, files: Sequence[Path],
                  decode: Callable[[], Sequence[np.ndarray]]) -> list[np.ndarray]:
    """``decode()``'s four arrays (x_train, y_train, x_test, y_test), from the cache when an
    entry for these exact ``files`` exists, else decoded and kept for the next run.

    Arrays read from the cache are read-only memory maps.
    """
    try:
        stamp = source_stamp(files)
    except OSError:
        return list(decode())
    if sum(size for _, size, _ in stamp) < MIN_BYTES:
        return list(decode())
    folder, key = _entry(name, stamp)
    arrays = _read(folder, key)
    if arrays is not None:
        return arrays
    arrays = list(decode())
    try:
        _write(folder, key, arrays)
    except OSError:
        pass  # no cache this time (read-only or full disk): the data is decoded all the same
    return arrays
