"""Time-to-accuracy race on Fashion-MNIST: `trainwell fit speedrun` vs a hand-written PyTorch loop.

Both contestants train the same network and schedule (784 → 512 BN-ReLU → 10, He init, AdamW
lr 0.005 / weight decay 0.05, batch 512, trainwell's 1cycle over 6 epochs with β1 cycled like
the momentum, all 60,000 training images) and stop at the final test metric. Each run is a fresh
process, timed from its start to its exit (data loading, and for trainwell the run directory it
writes, included), one contestant after the other for each seed. A Keras (JAX) contestant is
not written yet. Prints a table (each seed's test accuracy and seconds, mean) and
saves ``benchmarks/results/race_speedrun.{json,png}``.

    TRAINWELL_DATA=/path/to/data OMP_NUM_THREADS=1 python benchmarks/race_speedrun.py --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EPOCHS, BATCH, LR, WD, HIDDEN = 6, 512, 0.005, 0.05, 512


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion(root: Path):
    d = root / "fashion-mnist"
    x = _idx(d / "train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
    y = _idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = _idx(d / "t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
    yt = _idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    return (x - mean) / std, y, (xt - mean) / std, yt


def _onecycle(step: int, total: int) -> tuple[float, float]:
    """trainwell's 1cycle defaults: lr max/10 → max (45 %) → max/10 (45 %) → max/1000; β1 mirrors."""
    t1, t2 = 0.45 * total, 0.9 * total
    lo, hi = LR / 10, LR
    if step < t1:
        f = step / t1
        return lo + (hi - lo) * f, 0.95 - 0.10 * f
    if step < t2:
        f = (step - t1) / (t2 - t1)
        return hi + (lo - hi) * f, 0.85 + 0.10 * f
    f = min(1.0, (step - t2) / (total - t2))
    return lo + (LR / 1000 - lo) * f, 0.95


def torch_loop(seed: int) -> float:
    """The hand-written contestant: returns the test accuracy."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x, y, xt, yt = (torch.from_numpy(a) for a in _fashion(Path(os.environ["TRAINWELL_DATA"])))
    model = nn.Sequential(nn.Linear(784, HIDDEN), nn.BatchNorm1d(HIDDEN, momentum=0.01),
                          nn.ReLU(), nn.Linear(HIDDEN, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD, foreach=True)
    steps = (len(x) + BATCH - 1) // BATCH
    total, step = EPOCHS * steps, 0
    g = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        perm = torch.randperm(len(x), generator=g)
        for i in range(steps):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            lr, beta1 = _onecycle(step, total)
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, (beta1, group["betas"][1])
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())  # host sync: the final metric


def _timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - started, out


def race(seeds: list[int]) -> list[dict]:
    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            secs, _ = _timed([sys.executable, "-m", "trainwell", "fit", "speedrun", "--seed",
                              str(seed), "--quiet", "--out", tmp])
            summary = json.loads(next(Path(tmp).glob("*/summary.json")).read_text())
            rows.append({"contestant": "trainwell speedrun", "seed": seed, "seconds": secs,
                         "test_accuracy": summary["metrics"]["final"]["test_accuracy"]})
        secs, out = _timed([sys.executable, __file__, "--torch-loop", str(seed)])
        rows.append({"contestant": "hand-written PyTorch loop", "seed": seed, "seconds": secs,
                      "test_accuracy": float(out.strip().splitlines()[-1])})
        print(rows[-2], rows[-1], flush=True)
    return rows


def report(rows: list[dict]) -> None:
    names = list(dict.fromkeys(r["contestant"] for r in rows))
    print("| contestant | seeds | test accuracy (each) | mean acc | mean s | × fastest |")
    print("|---|---|---|---:|---:|---:|")
    means = {n: np.mean([r["seconds"] for r in rows if r["contestant"] == n]) for n in names}
    best = min(means.values())
    for n in names:
        rs = [r for r in rows if r["contestant"] == n]
        accs = ", ".join(f"{r['test_accuracy']:.4f}" for r in rs)
        print(f"| {n} | {len(rs)} | {accs} | {np.mean([r['test_accuracy'] for r in rs]):.4f} "
              f"| {means[n]:.1f} | {means[n] / best:.2f} |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "race_speedrun.json").write_text(json.dumps(rows, indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for n in names:
        rs = [r for r in rows if r["contestant"] == n]
        ax.scatter([r["seconds"] for r in rs], [r["test_accuracy"] for r in rs], label=n)
    ax.axhline(0.90, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("seconds from command to test metric")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "race_speedrun.png", dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--torch-loop", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_loop is not None:
        print(torch_loop(a.torch_loop))
        return
    report(race([int(s) for s in a.seeds.split(",")]))


if __name__ == "__main__":
    main()
