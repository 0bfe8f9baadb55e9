"""Files trainwell reads and writes: no code from data files, no writing through planted
symlinks, self-verifying checkpoints and models, a full disk is one clear error."""

from __future__ import annotations

import errno
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from torch import nn

from trainwell import atomic
from trainwell.atomic import DiskFullError, atomic_write, remove_stale_temp_files
from trainwell.data.cifar import SHA256SUMS, extract_cifar10, read_cifar_batch
from trainwell.errors import CheckpointError, DataError
from trainwell.nn import load_model, save_model
from trainwell.nn.builder import build_model
from trainwell.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint


# ----------------------------------------------------------------- 1. CIFAR pickles
class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_planted_cifar_batch_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Boom(), b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match="refusing .*system"):
        read_cifar_batch(path)
    assert not (tmp_path / "PWNED").exists()


def test_official_layout_still_reads_with_numpy_arrays(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for protocol in (2, 4, 5):
        path = tmp_path / f"b{protocol}"
        path.write_bytes(pickle.dumps({b"data": data, b"labels": [1, 2],
                                       b"batch_label": b"x"}, protocol=protocol))
        x, y = read_cifar_batch(path)
        assert x.shape == (2, 3, 32, 32) and y.tolist() == [1, 2]


def test_extracted_batches_are_checked_against_their_recorded_sha256(tmp_path):
    blob = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]}, protocol=2)
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    folder = extract_cifar10(archive, tmp_path / "root")
    assert "test_batch" in (folder / SHA256SUMS).read_text()
    assert read_cifar_batch(folder / "test_batch")[1].tolist() == [3]
    damaged = bytearray(blob)
    damaged[-20] ^= 1
    (folder / "test_batch").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="sha256 does not match"):
        read_cifar_batch(folder / "test_batch")


# ----------------------------------------------------------------- 2. exclusive temp files
def test_atomic_write_never_writes_through_a_planted_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = iter(["deadbeef", "cafef00d"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(names))
    target = tmp_path / "summary.json"
    planted = tmp_path / f".summary.json.{os.getpid()}.deadbeef.tmp"
    planted.symlink_to(victim)
    atomic_write(target, "{}")
    assert victim.read_text() == "precious"
    assert target.read_text() == "{}" and not target.is_symlink()


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "last.pt").symlink_to(victim)
    save_checkpoint({"step": 1, "w": torch.ones(2)}, tmp_path / "last.pt", keep_previous=False)
    assert victim.read_text() == "precious"
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_every_old_fixed_temp_name_is_ignored_by_checkpoints(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    for name in (".last.pt.tmp", ".manifest.json.tmp"):
        (ck / name).symlink_to(victim)
    save_checkpoint({"step": 1, "w": torch.ones(2)}, ck / "last.pt")
    save_checkpoint({"step": 2, "w": torch.ones(2)}, ck / "last.pt")
    assert victim.read_text() == "precious"


# ----------------------------------------------------------------- 8. disk full
def _full(f):
    f.write(b"x" * 100)
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_is_one_clear_error_and_leaves_nothing_partial(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    with pytest.raises(DiskFullError, match="no space left .*needs about 100 bytes .* free"):
        atomic_write(target, _full)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".last.pt.999999999.0123abcd.tmp"
    mine = tmp_path / f".last.pt.{os.getpid()}.0123abcd.tmp"
    other = tmp_path / "notes.tmp"
    for p in (dead, mine, other):
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == [dead]
    assert mine.exists() and other.exists()


# ----------------------------------------------------------------- 3. checkpoints
def _state(step, value=1.0):
    return {"format": 1, "step": step, "epoch": 0,
            "model": {"w": torch.full((64,), float(value)), "b": torch.zeros(3)}}


def _flip_tensor_byte(path, value=1.0):
    blob = bytearray(path.read_bytes())
    pattern = np.full(64, value, np.float32).tobytes()
    i = blob.find(pattern)
    assert i >= 0
    blob[i + 9] ^= 0x01
    path.write_bytes(bytes(blob))


def test_bit_flip_without_manifest_is_detected_and_falls_back(tmp_path):
    save_checkpoint(_state(1, 1.0), tmp_path / "last.pt")
    save_checkpoint(_state(2, 2.0), tmp_path / "last.pt")
    (tmp_path / "manifest.json").unlink()
    _flip_tensor_byte(tmp_path / "last.pt", 2.0)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "last.pt")
    with pytest.warns(RuntimeWarning, match="damaged"):
        path, state = find_checkpoint(tmp_path)
    assert path.name == "last.prev.pt" and state["step"] == 1


def test_non_finite_weights_fall_back_like_a_corrupt_checkpoint(tmp_path):
    save_checkpoint(_state(1), tmp_path / "last.pt")
    bad = _state(2)
    bad["model"]["w"][3] = float("nan")
    save_checkpoint(bad, tmp_path / "last.pt")  # intact file, written with NaN weights
    with pytest.warns(RuntimeWarning, match="non-finite"):
        path, state = find_checkpoint(tmp_path / "last.pt")
    assert path.name == "last.prev.pt" and state["step"] == 1


def test_nan_bytes_planted_in_a_checkpoint_are_damage_not_divergence(tmp_path):
    save_checkpoint(_state(1), tmp_path / "last.pt")
    save_checkpoint(_state(2), tmp_path / "last.pt")
    (tmp_path / "manifest.json").unlink()
    blob = bytearray((tmp_path / "last.pt").read_bytes())
    i = blob.find(np.full(64, 1.0, np.float32).tobytes())
    blob[i:i + 4] = np.float32("nan").tobytes()
    (tmp_path / "last.pt").write_bytes(bytes(blob))
    with pytest.warns(RuntimeWarning, match="damaged"):
        path, _ = find_checkpoint(tmp_path)
    assert path.name == "last.prev.pt"


# ----------------------------------------------------------------- 4. model integrity
def _saved_model(tmp_path):
    model = build_model(input_shape=(6,), n_outputs=3, hidden=[8])
    save_model(model, tmp_path / "model")
    return tmp_path / "model"


def test_a_damaged_model_file_is_refused_on_load(tmp_path):
    folder = _saved_model(tmp_path)
    load_model(folder)
    weights = folder / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-7] ^= 0x40  # inside the last tensor's data
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="damaged: its sha256"):
        load_model(folder)


def test_a_model_with_non_finite_weights_is_refused(tmp_path):
    model = build_model(input_shape=(6,), n_outputs=3, hidden=[8])
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("inf")
    save_model(model, tmp_path / "model")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_model(tmp_path / "model")


def test_model_nn_module_round_trip_still_exact(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    save_model(model, tmp_path / "m")
    from trainwell.nn import load_weights
    twin = load_weights(nn.Sequential(nn.Linear(3, 2)), tmp_path / "m")
    assert torch.equal(twin[0].weight, model[0].weight)
