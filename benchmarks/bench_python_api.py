"""Python API against the command line: the same recipe must train at the same speed.

Usage::

    python benchmarks/bench_python_api.py                  # 2 busy processes beside it
    python benchmarks/bench_python_api.py --busy 0 --epochs 3 --samples 20000

Three contestants, each in its own process, train one recipe (a 300-100 MLP on random
Fashion-MNIST-shaped data) for ``--epochs`` epochs with the default number of threads:

* ``cli``           ``trainwell fit recipe.toml --quiet``
* ``python``        ``import trainwell; trainwell.fit_recipe(...)`` (the README's Python path)
* ``torch-first``   ``import torch`` before trainwell: OpenMP's threads spin while they wait
  (what every Python user got before ``import trainwell`` set the CLI's threading policy)

``--busy N`` keeps N other processes spinning on the CPU meanwhile, as on a shared machine,
where spinning threads hurt most. The table gives the median epoch time of each and its ratio
to the CLI's; ``python`` should read about 1.0×.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RECIPE = """\
name = "bench_python_api"
[data]
dataset = "{path}"
validation = 1000
[model]
hidden = [300, 100]
[optimizer]
name = "adamw"
lr = 0.001
[train]
epochs = {epochs}
batch_size = 32
device = "cpu"
"""

PYTHON = """\
{first}import json, sys, trainwell
from trainwell.recipe import load_recipe
r = trainwell.fit_recipe(load_recipe(sys.argv[1]), out=sys.argv[2], quiet=True)
print(json.dumps(json.load(open(r.run_dir / "summary.json"))["epoch_times"]))
"""


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _epoch_times(run_root: Path) -> list[float]:
    run = next(p for p in run_root.iterdir() if p.is_dir())
    return json.loads((run / "summary.json").read_text())["epoch_times"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--busy", type=int, default=2, help="spinning processes beside the runs")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trainwell-bench-api-"))
    rng = np.random.default_rng(0)
    n = args.samples
    np.savez(work / "data.npz", x=rng.random((n, 784), dtype=np.float32),
             y=rng.integers(0, 10, n), x_test=rng.random((1000, 784), dtype=np.float32),
             y_test=rng.integers(0, 10, 1000))
    recipe = work / "recipe.toml"
    recipe.write_text(RECIPE.format(path=(work / "data.npz").as_posix(), epochs=args.epochs))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}

    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    results: dict[str, list[float]] = {}
    try:
        for name in ("cli", "python", "torch-first"):
            out = work / name
            t0 = time.perf_counter()
            if name == "cli":
                cmd = [sys.executable, "-m", "trainwell", "fit", str(recipe), "--out", str(out),
                       "--quiet"]
            else:
                code = PYTHON.format(first="import torch\n" if name == "torch-first" else "")
                cmd = [sys.executable, "-c", code, str(recipe), str(out)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr[-2000:]}")
            results[name] = _epoch_times(out)
            print(f"[{name}] {time.perf_counter() - t0:.1f} s in all", flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)

    base = statistics.median(results["cli"])
    print(f"\n{args.epochs} epochs of {n} samples, {args.busy} busy processes, "
          f"{os.cpu_count()} CPUs")
    print(f"{'contestant':<12} {'median epoch':>13} {'vs cli':>8}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<12} {med:>11.2f} s {med / base:>7.2f}×")


if __name__ == "__main__":
    main()
