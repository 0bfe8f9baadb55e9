"""Readers and writers of the IDX format (MNIST, Fashion-MNIST), gzip-compressed or not.

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then each
dimension as a big-endian uint32; the data follows, row-major.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from trainwell.errors import DataError

__all__ = ["read_idx", "write_idx"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _open(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array, vectorized.

    Example:
        >>> images = read_idx("fashion-mnist/train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape                                                 # doctest: +SKIP
        (60000, 28, 28)

    Raises:
        DataError: naming the file when it is not IDX, is truncated or is not valid gzip.
    """
    path = Path(path)
    try:
        with _open(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as an IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise DataError(f"{path}: IDX header says shape {shape} but the file holds "
                        f"{len(raw) - header} data bytes (truncated or corrupt)")
    data = np.frombuffer(raw, dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write a uint8/int8 array as IDX (gzip when ``compress`` or the name ends in ``.gz``).

    Example:
        >>> write_idx("/tmp/labels-idx1-ubyte.gz", np.array([0, 1, 2], np.uint8))  # doctest: +SKIP
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype not in _CODES:
        raise ValueError(f"write_idx supports uint8 and int8 arrays, not {array.dtype}")
    header = bytes([0, 0, _CODES[array.dtype], array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path
