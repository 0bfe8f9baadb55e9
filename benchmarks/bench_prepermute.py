"""Does gathering an epoch's data once (x[perm], then contiguous slices) beat a per-batch
index_select? Model A-like data (55k x 784 float32, 8 classes), 1 thread, in memory.

``BatchIterator`` gathers the whole epoch once in the permutation's order where memory allows
(``prepermute``), else every batch on its own. Both ways, on the same seeded data:

    data_only:  one epoch of ``BatchIterator(..., prepermute=True|False).epoch()``
    trainer:    one epoch of ``Trainer.fit`` (model A, SGD, eager) with the same switch

interleaved (each first in turn) so both see the same machine state, timed in process CPU
time (steadier than wall time on a busy machine). Prints one JSON line per batch size: the
median seconds per epoch and the ratio prepermute / per-batch (< 1: pre-permuting is faster),
and whether the two trainers ended with the same loss (the batches are bit-identical).
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_prepermute.py [--epochs 8] [--batch-sizes 32,128,512]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from bench_engine_overhead import EpochCpuTime, model_a

from trainwell.train import Trainer, batches
from trainwell.train.batches import BatchIterator

WAYS = ("per_batch", "prepermute")


def data_epoch(x, y, bs, prepermute, seed):
    it = BatchIterator(x, y, batch_size=bs, seed=seed, prepermute=prepermute)
    for _ in it.epoch():
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=55000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-sizes", default="32,128,512")
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 784, generator=g)
    y = torch.randint(0, 8, (args.n,), generator=g)
    share = batches.PREPERMUTE_SHARE
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        data = {w: [] for w in WAYS}
        trainers = {}
        for w in WAYS:
            cb = EpochCpuTime()
            trainers[w] = (Trainer(model_a(), optimizer="sgd", lr=1e-3, device="cpu", seed=0,
                                   compile=False, callbacks=[cb]), cb)
        for r in range(args.epochs + 1):   # the first round warms up, not counted
            for w in WAYS[r % 2:] + WAYS[:r % 2]:
                c0 = time.process_time()
                data_epoch(x, y, bs, w == "prepermute", r)
                data[w].append(time.process_time() - c0)
                # the Trainer decides by memory: a share of 0 leaves no room for the copy
                batches.PREPERMUTE_SHARE = share if w == "prepermute" else 0.0
                trainers[w][0].fit(x, y, epochs=1, batch_size=bs, verbose=0)
                batches.PREPERMUTE_SHARE = share
        out = {"batch_size": bs, "threads": torch.get_num_threads(), "n": args.n}
        for label, times in (("data_only", data),
                             ("trainer", {w: trainers[w][1].times for w in WAYS})):
            med = {w: statistics.median(times[w][1:]) for w in WAYS}
            out[label] = {**{f"{w}_s": round(med[w], 4) for w in WAYS},
                          "ratio": round(med["prepermute"] / med["per_batch"], 3)}
        losses = [trainers[w][0].history.last()["loss"] for w in WAYS]
        out["same_loss"] = losses[0] == losses[1]
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
