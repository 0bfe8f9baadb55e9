"""Seconds per epoch of every optimizer against plain SGD, through the Trainer.

The chapter's "faster optimizers" must not make an epoch slower than the update rule needs:
each optimizer trains the same 3×100 ReLU/He network (784 → 100-100-100 → 10, batch 32) on
the same in-memory random data, one epoch per optimizer per round, rounds interleaved so that
every optimizer sees the same machine state; the table reports the median epoch (CPU seconds
of this process, steadier than wall time on a shared machine, and wall seconds) and its ratio
to SGD. ``--compare-unfused`` adds torch's foreach kernels (what trainwell used before fused
kernels, no lean step) for AdaGrad, RMSProp and the Adam family. Run with one thread for steady numbers:

    OMP_NUM_THREADS=1 python benchmarks/bench_optimizers.py [--n 10000] [--rounds 3]

Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from trainwell.nn import build_model
from trainwell.optim import OPTIMIZERS, make_optimizer
from trainwell.train import Trainer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(input_shape=784, n_outputs=10, hidden=[100, 100, 100])


#: torch's own classes under trainwell's lean CPU steps (trainwell.optim.lean).
_TORCH = {"nadam": torch.optim.NAdam, "rmsprop": torch.optim.RMSprop,
          "adamax": torch.optim.Adamax}


def _optimizer(model: nn.Module, name: str, foreach_only: bool) -> torch.optim.Optimizer:
    if foreach_only:  # torch's multi-tensor kernels, no fused kernel and no trainwell rewrite
        info = OPTIMIZERS.get(name).obj
        kw = info.torch_kwargs({"lr": 1e-3, "momentum": 0.9, "beta_1": 0.9, "beta_2": 0.999,
                                "rho": 0.9, "epsilon": 1e-7, "weight_decay": 0.0,
                                "initial_accumulator": 0.1})
        kw.pop("fused", None)
        cls = _TORCH.get(name, info.cls)
        return cls(model.parameters(), lr=1e-3, **{**kw, "foreach": True})
    return make_optimizer(model.parameters(), name, lr=1e-3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="training samples (default 10000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare-unfused", action="store_true")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 784, generator=g)
    y = torch.randint(0, 10, (args.n,), generator=g)
    arms = [(name, False) for name in OPTIMIZERS.names()]
    if args.compare_unfused:
        arms += [(name, True) for name in ("adagrad", "rmsprop", "adam", "adamax", "nadam",
                                           "adamw")]
    times: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for _ in range(args.rounds + 1):                      # the first round warms up
        for name, foreach_only in arms:
            model = _model()
            opt = _optimizer(model, name, foreach_only)
            trainer = Trainer(model, optimizer=opt, seed=0)
            c0, t0 = time.process_time(), time.perf_counter()
            trainer.fit(x, y, epochs=1, batch_size=32)
            key = name + (" (torch foreach)" if foreach_only else "")
            times.setdefault(key, []).append(time.process_time() - c0)
            walls.setdefault(key, []).append(time.perf_counter() - t0)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    wall = {k: statistics.median(v[1:]) for k, v in walls.items()}
    base, wbase = med["sgd"], wall["sgd"]
    print(f"threads: {torch.get_num_threads()}, {args.n} samples, batch 32, 3×100 ReLU\n")
    print("| optimizer | CPU s/epoch | × SGD | wall s/epoch | × SGD |\n|---|---:|---:|---:|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {v / base:.2f} | {wall[k]:.2f} | {wall[k] / wbase:.2f} |")
    print(json.dumps({"threads": torch.get_num_threads(), "n": args.n, "median_cpu_s": med,
                      "median_wall_s": wall, "ratio_to_sgd": {k: v / base for k, v in med.items()}}))


if __name__ == "__main__":
    main()
