"""CNN benchmark: trainwell (eager, compiled) vs a hand-written PyTorch loop on the same convnet,
and the streaming path vs the in-memory path on data that fits.

Usage::

    python benchmarks/bench_cnn.py                       # 12,000 Fashion-MNIST images, 3 epochs
    python benchmarks/bench_cnn.py --samples 6000 --epochs 2 --rounds 2 --no-compiled

Every contestant trains the same network (``build_cnn`` with the ``fashion_cnn`` recipe's
``conv``/``hidden``/batch norm, identical initial weights) with the same optimizer (AdamW),
batch size and data, one process after another (``--rounds R`` repeats the list, A B C … A B
C …, so a busy machine slows every contestant alike); the table gives the median epoch time
after one warm-up epoch and its ratio to the hand-written loop. Keras (JAX backend) runs too
when ``keras`` and ``jax`` are importable (``pip install "trainwell[bench]"``); otherwise it
is reported as skipped. The streaming rows read the same samples from an ``.npy`` pair
(``data.stream = true``) with 0 and 2 DataLoader workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONV = [[16, 3], "pool", [32, 3], "pool"]
HIDDEN = [64]


def make_data(out: Path, n: int) -> str:
    """uint8 images (n, 28, 28) + labels as x.npy/y.npy: real Fashion-MNIST when present."""
    try:
        from trainwell.data import load_raw

        raw = load_raw("fashion_mnist", download=False, progress=False)
        x, y, what = raw.x_train[:n], raw.y_train[:n], f"Fashion-MNIST ({n} images)"
    except Exception:  # random images of the same shape keep the timing meaningful
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        what = f"random 28×28 images ({n})"
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", np.ascontiguousarray(x))
    np.save(out / "y.npy", np.asarray(y, np.int64))
    return what


def _model():
    import torch

    from trainwell.nn import build_cnn

    torch.manual_seed(0)
    return build_cnn(input_shape=(28, 28), n_outputs=10, conv=CONV, hidden=HIDDEN,
                     batch_norm="before", dropout=0.2)


def contestant(kind: str, folder: str, epochs: int, batch: int) -> dict:
    """Run one contestant in this process; returns its epoch times."""
    import torch

    torch.set_num_threads(int(os.environ.get("TRAINWELL_BENCH_THREADS", "1")))
    if kind.startswith("trainwell"):
        from trainwell.data.folders import load_folder_dataset
        from trainwell.train import Trainer

        stream = kind.startswith("trainwell stream")
        workers = 2 if kind.endswith("2 workers") else 0
        s = load_folder_dataset(folder, validation=0.1, test_fraction=0.1, stream=stream)
        t = Trainer(_model(), optimizer="adamw", lr=0.003, seed=0, device="cpu",
                    compile=kind == "trainwell (compiled)")
        t.workers = workers
        hist = t.fit(s.x_train, s.y_train, epochs=epochs, batch_size=batch)
        return {"epoch_times": [e["time"] for e in hist.epochs]}
    if kind == "pytorch loop":
        import torch.nn.functional as F

        from trainwell.data.folders import load_folder_dataset

        s = load_folder_dataset(folder, validation=0.1, test_fraction=0.1, stream=False)
        model = _model()
        opt = torch.optim.AdamW(model.parameters(), lr=0.003)
        x, y = s.x_train, s.y_train
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(x))
            for i in range(0, len(x), batch):
                idx = perm[i:i + batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return {"epoch_times": times}
    if kind == "keras (jax)":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        x = np.load(Path(folder) / "x.npy").astype("float32")[..., None] / 255.0
        y = np.load(Path(folder) / "y.npy")
        n = int(len(x) * 0.81)
        layers = [keras.Input((28, 28, 1))]
        for item in CONV:
            if item == "pool":
                layers.append(keras.layers.MaxPool2D())
            else:
                layers += [keras.layers.Conv2D(item[0], item[1], padding="same", use_bias=False,
                                               kernel_initializer="he_normal"),
                           keras.layers.BatchNormalization(), keras.layers.ReLU()]
        layers += [keras.layers.Flatten()]
        for units in HIDDEN:
            layers += [keras.layers.Dense(units, use_bias=False, kernel_initializer="he_normal"),
                       keras.layers.BatchNormalization(), keras.layers.ReLU(),
                       keras.layers.Dropout(0.2)]
        layers += [keras.layers.Dense(10)]
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.AdamW(0.003),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        times: list[float] = []
        model.fit(x[:n], y[:n], batch_size=batch, epochs=epochs, verbose=0, callbacks=[Timer()])
        return {"epoch_times": times}
    raise ValueError(kind)


KINDS = ["pytorch loop", "trainwell (eager)", "trainwell (compiled)", "keras (jax)",
         "trainwell streamed", "trainwell streamed, 2 workers"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=12000)
    p.add_argument("--epochs", type=int, default=3, help="epochs per contestant (1 is warm-up)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-compiled", action="store_true")
    p.add_argument("--run", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        print(json.dumps(contestant(args.run[0], args.run[1], args.epochs, args.batch)))
        return 0
    env = dict(os.environ, TRAINWELL_BENCH_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    kinds = [k for k in KINDS if not (args.no_compiled and k == "trainwell (compiled)")]
    times: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        what = make_data(Path(tmp), args.samples)
        for rnd in range(args.rounds):
            for kind in kinds:
                print(f"[cnn] round {rnd + 1}/{args.rounds}: {kind} …", flush=True)
                proc = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs),
                                       "--batch", str(args.batch), "--run", kind, tmp],
                                      capture_output=True, text=True, env=env)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode != 0 or not lines:
                    errors[kind] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:120]
                    continue
                times.setdefault(kind, []).extend(json.loads(lines[-1])["epoch_times"][1:])
    base = statistics.median(times["pytorch loop"]) if "pytorch loop" in times else float("nan")
    inmem = statistics.median(times["trainwell (eager)"]) if "trainwell (eager)" in times \
        else float("nan")
    print(f"\n### CNN (conv {CONV}, dense {HIDDEN}, BN, batch {args.batch}, AdamW) on {what}, "
          f"{args.threads} thread(s), {args.rounds} round(s)\n")
    print("| contestant | median s/epoch | × pytorch loop | × trainwell in memory |")
    print("| --- | ---: | ---: | ---: |")
    for kind in kinds:
        if kind in times:
            m = statistics.median(times[kind])
            print(f"| {kind} | {m:.2f} | {m / base:.2f} | {m / inmem:.2f} |")
        else:
            print(f"| {kind} | skipped: {errors.get(kind, '?')} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
