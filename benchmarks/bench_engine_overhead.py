"""How much does the Trainer cost over a minimal hand-written loop? (target: <= ~1.05x)

Both train the chapter's model A (784 -> 300-100-50-50-50 SELU -> 8, lecun init, SGD lr 1e-3,
batch 32) on the same in-memory tensors, one epoch at a time, interleaved (loop, trainer,
loop, ...) so that both see the same machine state. The minimal loop is

    perm = torch.randperm(n); for i in range(0, n, 32):
        idx = perm[i:i+32]; loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

The Trainer additionally accumulates the loss and the accuracy on the device, validates its
inputs, and keeps history. Run: ``python benchmarks/bench_engine_overhead.py [--n 20000]
[--epochs 5] [--device cpu] [--compile]``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from trainwell.train import Callback, Trainer


class EpochCpuTime(Callback):
    """Process CPU time of each epoch's loop (epoch-level events only: no per-step cost)."""

    def __init__(self):
        self.times: list[float] = []

    def on_epoch_start(self, t, epoch):
        self._c0 = time.process_time()

    def on_validation_end(self, t, epoch, logs):
        self.times.append(time.process_time() - self._c0)


def model_a(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    n_in = 784
    for units in (300, 100, 50, 50, 50):
        lin = nn.Linear(n_in, units)
        nn.init.normal_(lin.weight, std=(1.0 / n_in) ** 0.5)  # lecun normal
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.SELU()]
        n_in = units
    layers.append(nn.Linear(n_in, 8))
    return nn.Sequential(*layers)


def minimal_epoch(model, opt, x, y, batch_size: int) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    perm = torch.randperm(x.shape[0], device=x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 784, generator=g).to(dev)
    y = torch.randint(0, 8, (args.n,), generator=g).to(dev)

    base_model = model_a().to(dev)
    base_opt = torch.optim.SGD(base_model.parameters(), lr=1e-3, foreach=True)
    epoch_cpu = EpochCpuTime()
    trainer = Trainer(model_a(), optimizer="sgd", lr=1e-3, device=dev, seed=0,
                      compile=args.compile, callbacks=[epoch_cpu])

    minimal_epoch(base_model, base_opt, x, y, args.batch_size)  # warm-up both
    trainer.fit(x, y, epochs=1, batch_size=args.batch_size)
    # Wall time is what users feel; process CPU time is steadier on a busy machine.
    base, ours, walls, base_cpu, ours_cpu = [], [], [], [], []
    for _ in range(args.epochs):
        wall, cpu = minimal_epoch(base_model, base_opt, x, y, args.batch_size)
        base.append(wall)
        base_cpu.append(cpu)
        t0 = time.perf_counter()
        trainer.fit(x, y, epochs=1, batch_size=args.batch_size)
        walls.append(time.perf_counter() - t0)  # + input validation and setup of fit()
        ours_cpu.append(epoch_cpu.times[-1])
        ours.append(trainer.history.last()["time"])
    med = statistics.median
    result = {
        "device": str(dev), "n": args.n, "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "compile": args.compile,
        "minimal_epoch_s": med(base), "trainer_epoch_s": med(ours),
        "ratio": med(ours) / med(base),
        "fit_wall_ratio": med(walls) / med(base),
        "cpu_ratio": med(ours_cpu) / med(base_cpu),
        "minimal_all": base, "trainer_all": ours,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
