import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from trainwell.errors import CheckpointError
from trainwell.train import (
    ModelCheckpoint,
    Trainer,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def _sha(path):
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_save_keeps_the_previous_checkpoint_and_records_sha256(tmp_path):
    save_checkpoint({"step": 1, "w": torch.ones(3)}, tmp_path / "last.pt")
    save_checkpoint({"step": 2, "w": torch.zeros(3)}, tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert load_checkpoint(tmp_path / "last.prev.pt")["step"] == 1
    files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    for name in ("last.pt", "last.prev.pt"):
        assert files[name]["sha256"] == _sha(tmp_path / name)
        assert files[name]["size"] == (tmp_path / name).stat().st_size
    assert files["last.pt"]["step"] == 2
    assert set(os.listdir(tmp_path)) == {"last.pt", "last.prev.pt", "manifest.json"}


def test_truncated_last_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path):
    save_checkpoint({"step": 1}, tmp_path / "last.pt")
    save_checkpoint({"step": 2}, tmp_path / "last.pt")
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])  # killed mid-write
    with pytest.warns(RuntimeWarning, match="falling back"):
        path, state = find_checkpoint(tmp_path)
    assert path.name == "last.prev.pt" and state["step"] == 1
    with pytest.warns(RuntimeWarning):  # naming the file directly also falls back
        assert find_checkpoint(tmp_path / "last.pt")[1]["step"] == 1


def test_a_new_file_not_yet_in_the_manifest_is_not_trusted(tmp_path):
    # Killed after the rename but before the manifest update: last.pt is unverified, and the
    # previous one (whose sha the manifest still lists) is used.
    save_checkpoint({"step": 1}, tmp_path / "last.pt")
    manifest = (tmp_path / "manifest.json").read_text()
    save_checkpoint({"step": 2}, tmp_path / "last.pt")
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.warns(RuntimeWarning, match="sha256"):
        assert find_checkpoint(tmp_path)[1]["step"] == 1


def test_no_usable_checkpoint_raises(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        find_checkpoint(tmp_path / "nope")
    (tmp_path / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        find_checkpoint(tmp_path / "last.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_hostile_pickle_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "last.pt"
    torch.save({"step": 1, "payload": _Evil()}, bad)  # would run code when unpickled
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="refusing"):
        find_checkpoint(tmp_path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not (tmp_path / "PWNED").exists()


def test_hostile_file_is_refused_even_when_the_manifest_vouches_for_it(tmp_path):
    save_checkpoint({"step": 1, "payload": torch.ones(1)}, tmp_path / "last.pt")
    torch.save({"payload": _Evil()}, tmp_path / "x.pt")
    os.replace(tmp_path / "x.pt", tmp_path / "last.pt")
    m = json.loads((tmp_path / "manifest.json").read_text())
    m["files"]["last.pt"]["sha256"] = _sha(tmp_path / "last.pt")
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="refusing"):
        find_checkpoint(tmp_path)


def test_model_checkpoint_writes_last_and_best_with_plain_data(blobs, mlp, tmp_path):
    x, y, xv, yv = blobs
    ck = ModelCheckpoint(tmp_path, every_epochs=1)
    t = Trainer(mlp(), optimizer="adam", lr=0.01, callbacks=[ck])
    t.fit(x, y, epochs=3, validation_data=(xv, yv))
    last = load_checkpoint(tmp_path / "last.pt")  # weights_only=True inside
    best = load_checkpoint(tmp_path / "best.pt")
    assert last["epoch"] == 3 and last["step"] == t.step
    best_epoch = t.history.best("val_loss")["epoch"]
    assert best["epoch"] == best_epoch
    assert set(last) >= {"model", "optimizer", "schedule", "callbacks", "rng", "generator",
                         "batch_in_epoch", "step", "epoch", "history"}
    assert "ModelCheckpoint" in last["callbacks"]
    for k, v in t.model.state_dict().items():
        assert torch.equal(last["model"][k], v)


def test_resume_refuses_a_checkpoint_of_another_model(blobs, mlp, tmp_path):
    x, y, _, _ = blobs
    Trainer(mlp(), callbacks=[ModelCheckpoint(tmp_path)]).fit(x, y, epochs=1)
    with pytest.raises(CheckpointError, match="does not fit"):
        Trainer(mlp(hidden=8)).fit(x, y, epochs=2, resume_from=tmp_path)


def test_sigkill_while_writing_leaves_a_loadable_checkpoint(tmp_path):
    worker = Path(__file__).with_name("kill_worker.py")
    for delay in (0.3,):  # one kill keeps the suite fast; the truncation tests cover the rest
        d = tmp_path / f"run{delay}"
        proc = subprocess.Popen([sys.executable, str(worker), str(d)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            deadline = time.time() + 60
            while not (d / "last.prev.pt").exists() and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a fallback may warn
            path, state = find_checkpoint(d)
        assert state["step"] >= 1 and path.name in ("last.pt", "last.prev.pt")


def test_mid_epoch_resume_with_another_batch_size_is_refused(blobs, mlp, tmp_path):
    from trainwell.errors import ConfigError
    from trainwell.train import Callback

    class Stop(Callback):
        def on_batch_end(self, t, step):
            if t.step == 3:
                raise KeyboardInterrupt

    x, y, _, _ = blobs
    t = Trainer(mlp(), callbacks=[ModelCheckpoint(tmp_path, every_steps=1), Stop()])
    with pytest.raises(KeyboardInterrupt):
        t.fit(x, y, epochs=2, batch_size=16)
    with pytest.raises(ConfigError, match="batch_size"):
        Trainer(mlp()).fit(x, y, epochs=2, batch_size=32, resume_from=tmp_path)
    Trainer(mlp()).fit(x, y, epochs=2, batch_size=16, resume_from=tmp_path)  # same: fine
