"""Epoch times on CUDA, in one process: trainwell eager, compiled (CUDA graphs), bf16, and a
hand-written PyTorch loop over the same data on the GPU (the reference).

Usage: ``python benchmarks/gpu_timing.py [--epochs 3] [--workload model_a]``. Prints a
Markdown table (median epoch time over the timed epochs, after one warm-up epoch; the first
epoch of each mode, compilation included, in its own column) and the ratios to the
hand-written loop. Random data of the workload's shape: speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORKLOADS  # noqa: E402


def _model(w):
    from trainwell.nn import build_model

    torch.manual_seed(0)
    return build_model(input_shape=(w.n_inputs,), n_outputs=w.n_classes, task="multiclass",
                       hidden=w.hidden, activation=w.activation, init=w.init,
                       batch_norm="before" if w.batch_norm else "none")


def trainwell_times(w, x, y, epochs: int, **kw) -> list[float]:
    from trainwell.train import Trainer

    t = Trainer(_model(w), optimizer=w.optimizer, lr=w.lr, seed=0, device="cuda", **kw)
    t.fit(x, y, epochs=epochs + 1, batch_size=w.batch_size)
    return [r["time"] for r in t.history.epochs]


def plain_loop_times(w, x, y, epochs: int) -> list[float]:
    """The loop a PyTorch user writes: data on the GPU, a permutation, index per batch."""
    model = _model(w).cuda()
    opt = (torch.optim.SGD(model.parameters(), lr=w.lr) if w.optimizer == "sgd"
           else torch.optim.NAdam(model.parameters(), lr=w.lr))
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=g).cuda()
        for lo in range(0, len(x), w.batch_size):
            idx = perm[lo:lo + w.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workload", default="model_a", choices=sorted(WORKLOADS))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to time")
        return 0
    w = WORKLOADS[args.workload]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(w.n_samples, w.n_inputs, generator=g)
    y = torch.randint(0, w.n_classes, (w.n_samples,), generator=g)
    modes = {
        "pytorch loop (hand-written)": lambda: plain_loop_times(w, x.cuda(), y.cuda(),
                                                                args.epochs),
        "trainwell eager fp32": lambda: trainwell_times(w, x, y, args.epochs),
        "trainwell compiled fp32 (CUDA graphs)": lambda: trainwell_times(w, x, y, args.epochs,
                                                                          compile=True),
        "trainwell eager bf16": lambda: trainwell_times(w, x, y, args.epochs,
                                                        precision="bf16"),
    }
    rows = []
    for name, run in modes.items():
        try:
            times = run()
        except Exception as exc:  # report and go on: one table in any case
            rows.append((name, None, None, f"{type(exc).__name__}: {str(exc)[:120]}"))
            continue
        rows.append((name, statistics.median(times[1:]), times[0], ""))
    ref = rows[0][1]
    print(f"\n{torch.cuda.get_device_name()}, {args.workload}, batch {w.batch_size}, "
          f"{w.n_samples} samples, torch {torch.__version__}\n")
    print("| mode | median epoch (s) | first epoch (s) | × hand-written loop |")
    print("|---|---:|---:|---:|")
    for name, med, first, err in rows:
        if med is None:
            print(f"| {name} | failed: {err} | | |")
        else:
            ratio = f"{med / ref:.2f}" if ref else "—"
            print(f"| {name} | {med:.3f} | {first:.3f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
