"""Seconds per epoch of every optimizer against plain SGD, through the Trainer.

The chapter's "faster optimizers" must not make an epoch slower than the update rule needs:
each optimizer trains the same 3×100 ReLU/He network (784 → 100-100-100 → 10, batch 32) on
the same in-memory random data, one epoch per optimizer per round, rounds interleaved so that
every optimizer sees the same machine state; the table reports the median and the fastest epoch (CPU seconds
of this process, steadier than wall time on a shared machine; the fastest round is the one
least disturbed by other processes) and the median wall seconds, each with its ratio to SGD;
a second table times ``optimizer.step()`` alone on the network's gradients. ``--compare-unfused`` adds torch's foreach kernels (what trainwell used before fused
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


def step_only(arms: list[tuple[str, bool]], rounds: int, steps: int = 200) -> dict[str, float]:
    """Microseconds per ``optimizer.step()`` alone (fixed gradients, fastest of the rounds)."""
    opts = {}
    for name, foreach_only in arms:
        model = _model()
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g) * 1e-2
        opts[name + (" (torch foreach)" if foreach_only else "")] = _optimizer(
            model, name, foreach_only)
    best = dict.fromkeys(opts, float("inf"))
    for _ in range(rounds + 1):
        for key, opt in opts.items():
            c0 = time.process_time()
            for _ in range(steps):
                opt.step()
            best[key] = min(best[key], (time.process_time() - c0) / steps * 1e6)
    return best


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
    low = {k: min(v[1:]) for k, v in times.items()}   # least disturbed by other processes
    wall = {k: statistics.median(v[1:]) for k, v in walls.items()}
    base, lbase, wbase = med["sgd"], low["sgd"], wall["sgd"]
    print(f"threads: {torch.get_num_threads()}, {args.n} samples, batch 32, 3×100 ReLU, "
          f"{args.rounds} rounds\n")
    print("| optimizer | CPU s/epoch, median | × SGD | CPU s/epoch, fastest | × SGD "
          "| wall s/epoch | × SGD |\n|---|---:|---:|---:|---:|---:|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.3f} | {v / base:.2f} | {low[k]:.3f} | {low[k] / lbase:.2f} "
              f"| {wall[k]:.3f} | {wall[k] / wbase:.2f} |")
    step = step_only(arms, args.rounds)
    print("\n| optimizer | optimizer.step() alone, µs | × SGD |\n|---|---:|---:|")
    for k, v in step.items():
        print(f"| {k} | {v:.0f} | {v / step['sgd']:.2f} |")
    print(json.dumps({"threads": torch.get_num_threads(), "n": args.n, "rounds": args.rounds,
                      "step_only_us": step,
                      "median_cpu_s": med, "fastest_cpu_s": low, "median_wall_s": wall,
                      "ratio_to_sgd": {k: v / base for k, v in med.items()},
                      "fastest_ratio_to_sgd": {k: v / lbase for k, v in low.items()}}))


if __name__ == "__main__":
    main()
