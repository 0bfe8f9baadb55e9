"""Cost of gradient-health probes: epoch time of the chapter's model A with and without
:class:`trainwell.diagnose.GradientProbe` at its default sampling (every 50 steps).

Model A (Géron, transfer-learning section): 784 → 300-100-50-50-50 SELU → 8, batch 32, SGD
lr 1e-3, ~44k samples (random data of Fashion-MNIST's shape; the cost does not depend on the
values). Runs alternate (no probe, probe, ...) so that machine load hits both alike; the
figure reported is the ratio of the median epoch times. On a busy machine that ratio is
noisy at the few-percent level, so the probe is also timed sampling *every* step: the extra
time per sampled step divided by ``every`` gives the default setting's cost with a much smaller
error (``ratio_from_every_1``).

    python benchmarks/bench_probe_cost.py [--epochs 3] [--samples 43986] [--every 50]
                                          [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch


def model_a():
    from trainwell.nn import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SELU self-normalization notes
        return build_model(input_shape=(28, 28), n_outputs=8, hidden=(300, 100, 50, 50, 50),
                           activation="selu", init="lecun")


def epoch_time(x, y, *, probe_every: int | None, device: str) -> float:
    from trainwell.diagnose import GradientProbe
    from trainwell.train import Callback, Trainer

    class Clock(Callback):
        def on_epoch_start(self, t, epoch):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_epoch_end(self, t, epoch, logs):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.t0

    clock = Clock()
    callbacks = [clock] + ([GradientProbe(every=probe_every)] if probe_every else [])
    torch.manual_seed(0)
    trainer = Trainer(model_a(), optimizer="sgd", lr=1e-3, callbacks=callbacks, device=device)
    trainer.fit(x, y, epochs=1, batch_size=32)
    return clock.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration")
    ap.add_argument("--samples", type=int, default=43986)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.samples, 28, 28, generator=g)
    y = torch.randint(0, 8, (args.samples,), generator=g)
    epoch_time(x[:2048], y[:2048], probe_every=args.every, device=args.device)   # warm-up
    base, probed, every1 = [], [], []
    for _ in range(args.epochs):
        base.append(epoch_time(x, y, probe_every=None, device=args.device))
        probed.append(epoch_time(x, y, probe_every=args.every, device=args.device))
        every1.append(epoch_time(x, y, probe_every=1, device=args.device))
    b = statistics.median(base)
    ratio = statistics.median(probed) / b
    r1 = statistics.median(every1) / b
    print(json.dumps({"device": args.device, "threads": torch.get_num_threads(),
                      "every": args.every, "samples": args.samples,
                      "epoch_s_without": [round(v, 3) for v in base],
                      "epoch_s_with": [round(v, 3) for v in probed],
                      "epoch_s_every_step": [round(v, 3) for v in every1],
                      "ratio_of_medians": round(ratio, 4),
                      "ratio_every_step": round(r1, 4),
                      "ratio_from_every_1": round(1 + (r1 - 1) / args.every, 4)}, indent=2))


if __name__ == "__main__":
    main()
