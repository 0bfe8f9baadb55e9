import gzip
import struct

import numpy as np
import pytest

from trainwell.data.idx import read_idx, write_idx
from trainwell.errors import DataError


def test_idx_round_trip_of_hand_written_gzip_file(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    # Written by hand from the format spec: 0 0 0x08 ndim, then big-endian dims.
    payload = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + images.tobytes()
    path = tmp_path / "imgs-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload))
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_write_idx_is_read_back_plain_and_gzip(tmp_path):
    labels = np.array([9, 0, 3, 3], dtype=np.uint8)
    for name in ("l-idx1-ubyte", "l-idx1-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, labels)), labels)
    raw = (tmp_path / "l-idx1-ubyte").read_bytes()
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 4])


def test_bad_magic_and_truncation_name_the_file(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02"))
    with pytest.raises(DataError, match=r"short.gz.*truncated or corrupt"):
        read_idx(short)
