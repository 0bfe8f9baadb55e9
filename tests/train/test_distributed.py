"""Many processes (DDP over gloo, spawned by `trainwell fit --nproc 2` inside the test).

A 2-process run must end where a 1-process run with the same global batch and seed ends (the
gradient all-reduce makes them equal up to summation order); a worker killed mid-run stops
the job with one message naming its rank, and ``--resume`` with the same N finishes exactly
where an uninterrupted 2-process run does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trainwell.errors import ConfigError
from trainwell.train import BatchIterator, distributed
from trainwell.train.checkpoint import find_checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available")

# 200 training samples; global batches of 33 split 17/16 over two workers and the last one
# (2 samples) 1/1: the loss weighting is exercised. No dropout (random masks differ).
RECIPE = """\
name = "ddp"
[data]
dataset = "{path}"
validation = 40
[model]
hidden = [16]
[optimizer]
name = "nesterov"
lr = 0.05
[schedule]
name = "onecycle"
[train]
epochs = {epochs}
batch_size = 33
device = "cpu"
early_stopping = false
"""


def _write_data(path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(240, 6)).astype(np.float32)
    xt = rng.normal(size=(30, 6)).astype(np.float32)
    np.savez(path, x=x, y=(x @ w).argmax(1), x_test=xt, y_test=(xt @ w).argmax(1))


@pytest.fixture(scope="module")
def ddp_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ddp")
    _write_data(d / "data.npz")
    (d / "ddp.toml").write_text(RECIPE.format(path=(d / "data.npz").as_posix(), epochs=20))
    return d


def _fit(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainwell", "fit", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, **kw)


def _only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _final_state(run: Path) -> dict:
    return find_checkpoint(run / "checkpoints", map_location="cpu")[1]


@pytest.fixture(scope="module")
def two_process_run(ddp_dir) -> Path:
    """An uninterrupted 2-process run (the reference of both tests)."""
    res = _fit(["ddp.toml", "--nproc", "2", "--quiet", "--out", "runs2"], ddp_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    return _only_run(ddp_dir / "runs2")


def test_two_processes_end_like_one_process(ddp_dir, two_process_run):
    from trainwell.config import load_recipe
    from trainwell.workflows.run import fit_recipe

    one = fit_recipe(load_recipe(ddp_dir / "ddp.toml"), out=ddp_dir / "runs1", quiet=True)
    two = _final_state(two_process_run)
    assert two["step"] == one.trainer.step == 20 * 7  # global steps: ceil(200 / 33)
    for k, v in one.trainer.model.state_dict().items():
        torch.testing.assert_close(two["model"][k], v, rtol=1e-4, atol=1e-5)
    rows1, rows2 = one.trainer.history.to_list(), two["history"]
    assert len(rows1) == len(rows2) == 20
    for r1, r2 in zip(rows1, rows2, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "steps"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-4, abs=1e-6), key
    summary = (two_process_run / "summary.json").read_text()
    assert '"processes": 2' in summary and '"precision": "fp32"' in summary


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            out += [child, *_children(child)]
    return out


def _rank_of(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((e[5:].decode() for e in env if e.startswith(b"RANK=")), None)


@pytest.mark.slow  # two 2-process jobs
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_killed_worker_is_named_and_resume_finishes_like_uninterrupted(ddp_dir,
                                                                        two_process_run):
    out = ddp_dir / "runs_killed"
    job = subprocess.Popen([sys.executable, "-m", "trainwell", "fit", "ddp.toml", "--nproc", "2",
                            "--quiet", "--out", str(out)], cwd=ddp_dir, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    victim = None
    while victim is None and time.monotonic() < deadline and job.poll() is None:
        if any(out.glob("*/checkpoints/last.pt")):  # a checkpoint exists: kill rank 1 now
            victim = next((p for p in _children(job.pid) if _rank_of(p) == "1"), None)
        time.sleep(0.02)
    assert victim is not None, "the job ended before a worker could be killed"
    os.kill(victim, signal.SIGKILL)
    _, err = job.communicate(timeout=240)
    assert job.returncode == 1
    run = _only_run(out)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err[-3000:]
    assert "worker rank 1 was killed by signal SIGKILL" in lines[0]
    assert f"--resume {run} --nproc 2" in lines[0]
    killed_at = _final_state(run)["step"]
    assert 0 < killed_at < 20 * 7  # the last good checkpoint, mid-run

    res = _fit(["--resume", str(run), "--nproc", "2", "--quiet"], ddp_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed, reference = _final_state(run), _final_state(two_process_run)
    assert resumed["step"] == reference["step"]
    for k, v in reference["model"].items():
        assert torch.equal(resumed["model"][k], v), k
    drop = ("time",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed["history"]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in reference["history"]]


def test_nproc_zero_is_refused_before_anything_starts(ddp_dir):
    from typer.testing import CliRunner

    from trainwell.cli import app

    res = CliRunner().invoke(app, ["fit", str(ddp_dir / "ddp.toml"), "--nproc", "0",
                                   "--out", str(ddp_dir / "never")])
    assert res.exit_code == 2
    assert "--nproc" in res.output and "integer ≥ 1" in res.output
    assert not (ddp_dir / "never").exists()


def test_shards_are_disjoint_and_cover_every_global_batch():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    parts = [BatchIterator(x, y, batch_size=4, seed=3, rank=r, world_size=2) for r in (0, 1)]
    whole = BatchIterator(x, y, batch_size=4, seed=3)
    perms = [p.permutation() for p in parts]
    ref = whole.permutation()
    assert all(torch.equal(p, ref) for p in perms)  # one seeded permutation for every worker
    for i in range(len(whole)):
        a, b = (it.batch(pm, i)[1] for it, pm in zip(parts, perms, strict=True))
        assert sorted(torch.cat([a, b]).tolist()) == sorted(whole.batch(ref, i)[1].tolist())
        assert not set(a.tolist()) & set(b.tolist())
    assert [parts[0].global_size(i) for i in range(3)] == [4, 4, 2]


def test_loss_weight_makes_the_averaged_gradient_the_global_mean():
    # shards of 17 and 16 samples of a global batch of 33: DDP averages the two means
    g = torch.randn(33)
    w0, w1 = distributed.loss_weight(17, 33, 2), distributed.loss_weight(16, 33, 2)
    averaged = (w0 * g[:17].mean() + w1 * g[17:].mean()) / 2
    assert averaged == pytest.approx(float(g.mean()), rel=1e-6)
    assert distributed.loss_weight(16, 32, 2) == 1.0


@pytest.mark.parametrize("n_train, batch, n, field", [
    (3, 2, 4, "--nproc"),              # more processes than samples
    (100, 2, 4, "train.batch_size"),   # a global batch smaller than the processes
    (101, 10, 2, "train.batch_size"),  # a last batch of 1 sample for 2 processes
])
def test_bad_splits_are_one_clear_error(n_train, batch, n, field):
    with pytest.raises(ConfigError) as e:
        distributed.check_shards(n_train, batch, n)
    assert e.value.field == field


def test_even_splits_pass():
    distributed.check_shards(100, 10, 2)
    distributed.check_shards(101, 10, 1)
    distributed.check_shards(102, 10, 2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                    reason="needs two CUDA GPUs")
def test_nccl_two_gpus_end_like_one_gpu(ddp_dir):
    cuda = ["--set", 'train.device="cuda"', "--quiet"]
    one = _fit(["ddp.toml", *cuda, "--out", "gpu1"], ddp_dir)
    two = _fit(["ddp.toml", *cuda, "--nproc", "2", "--out", "gpu2"], ddp_dir)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    a, b = _final_state(_only_run(ddp_dir / "gpu1")), _final_state(_only_run(ddp_dir / "gpu2"))
    assert a["step"] == b["step"]
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-3, atol=1e-4)
