"""The decoded-data cache: a second load reads the kept copy, a changed source file is decoded
again, a broken copy is ignored and rewritten, and the data folder is never written."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from trainwell.data import decoded_cache, load_dataset
from trainwell.data.builtin import BUILTINS
from trainwell.data.decoded_cache import cached_arrays, decoded_cache_dir
from trainwell.data.idx import write_idx


@pytest.fixture(autouse=True)
def cache_here(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(decoded_cache, "MIN_BYTES", 0)  # tiny test files are cached too


def _source(tmp_path, values=(1, 2, 3)):
    f = tmp_path / "data" / "source.bin"
    f.parent.mkdir(exist_ok=True)
    f.write_bytes(bytes(values))
    return f


def _decoder(f, calls):
    def decode():
        calls.append(1)
        v = np.frombuffer(f.read_bytes(), np.uint8)
        return [v.reshape(-1, 1), v.astype(np.int64), v[:1].reshape(1, 1), v[:1].astype(np.int64)]
    return decode


def test_the_second_load_reads_the_kept_copy(tmp_path):
    f, calls = _source(tmp_path), []
    first = cached_arrays("toy", [f], _decoder(f, calls))
    second = cached_arrays("toy", [f], _decoder(f, calls))
    assert len(calls) == 1
    assert all(isinstance(a, np.memmap) and not a.flags.writeable for a in second)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype


def test_a_changed_source_file_is_decoded_again_and_the_old_copy_dropped(tmp_path):
    f, calls = _source(tmp_path), []
    cached_arrays("toy", [f], _decoder(f, calls))
    f.write_bytes(bytes([7, 8, 9, 10]))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    x, *_ = cached_arrays("toy", [f], _decoder(f, calls))
    assert len(calls) == 2 and x.ravel().tolist() == [7, 8, 9, 10]
    assert len(list(decoded_cache_dir().glob("toy-*"))) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "meta"])
def test_a_broken_copy_is_ignored_and_written_again(tmp_path, damage):
    f, calls = _source(tmp_path), []
    cached_arrays("toy", [f], _decoder(f, calls))
    (entry,) = decoded_cache_dir().glob("toy-*")
    if damage == "truncate":
        (entry / "x_train.npy").write_bytes((entry / "x_train.npy").read_bytes()[:-2])
    elif damage == "garbage":
        (entry / "y_train.npy").write_bytes(b"not an npy file")
    else:
        (entry / "meta.json").write_text("{")
    x, y, _, _ = cached_arrays("toy", [f], _decoder(f, calls))
    assert len(calls) == 2 and x.ravel().tolist() == [1, 2, 3] and y.tolist() == [1, 2, 3]
    cached_arrays("toy", [f], _decoder(f, calls))
    assert len(calls) == 2  # the rewritten copy is good


def test_a_cache_that_cannot_be_written_costs_only_the_decoding(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("TRAINWELL_CACHE", str(blocker))
    f, calls = _source(tmp_path), []
    for _ in range(2):
        x, *_ = cached_arrays("toy", [f], _decoder(f, calls))
        assert x.ravel().tolist() == [1, 2, 3]
    assert len(calls) == 2


def test_a_copy_another_process_put_first_is_kept(tmp_path):
    f, calls = _source(tmp_path), []
    cached_arrays("toy", [f], _decoder(f, calls))
    (entry,) = decoded_cache_dir().glob("toy-*")
    folder, key = decoded_cache._entry("toy", decoded_cache.source_stamp([f]))
    decoded_cache._write(folder, key, _decoder(f, calls)())  # the loser of a race
    assert folder == entry and decoded_cache._read(folder, key) is not None
    assert [p.name for p in decoded_cache_dir().iterdir()] == [entry.name]  # no temp left


def test_load_dataset_uses_the_copy_and_never_writes_the_data_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name, shape in (("train-images-idx3-ubyte.gz", (12, 28, 28)),
                        ("t10k-images-idx3-ubyte.gz", (4, 28, 28))):
        write_idx(folder / name, rng.integers(0, 256, shape, dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(12) % 10).astype(np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", (np.arange(4) % 10).astype(np.uint8))
    monkeypatch.setitem(BUILTINS, "fashion_mnist",
                        dataclasses.replace(BUILTINS["fashion_mnist"], n_train=12, n_test=4))
    before = sorted(p.name for p in folder.iterdir())
    a = load_dataset("fashion_mnist", cache_dir=tmp_path / "data", validation=2)
    from trainwell.data import loader
    loader._decoded.cache_clear()  # a new process
    b = load_dataset("fashion_mnist", cache_dir=tmp_path / "data", validation=2)
    assert len(list(decoded_cache_dir().glob("fashion_mnist-*"))) == 1
    assert sorted(p.name for p in folder.iterdir()) == before
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, part).numpy(), getattr(b, part).numpy())
