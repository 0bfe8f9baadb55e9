"""Time-to-accuracy race on Fashion-MNIST: `trainwell fit speedrun` vs a hand-written PyTorch
loop vs Keras 3 (JAX), each over several random seeds.

Every contestant trains the recipe's network and schedule (read from ``speedrun.toml`` by
``contestants/speedrun_setup.py``: the same layers, He init, batch norm, AdamW, 1cycle rate and
β1, label smoothing, precision, batch size, all 60,000 training images) and stops at the final
test metric. Each run is a fresh process, timed from its start to its exit: importing the
framework, loading the data, compiling and, for trainwell, the run directory it writes (model,
summary, plots, report.html) are included. For each seed the three run one after the other, in
an order that rotates from seed to seed, all with the same thread count (``--threads``:
OMP/MKL threads for torch, XLA's thread pool for JAX). Caches start empty with the race and
stay for its later seeds: trainwell's (decoded data, compiled kernels) and JAX's persistent
compilation cache, so Keras compiles its step once, like a Keras user who turned it on. Prints a table (each seed's test
accuracy and seconds, mean ± std, CPU seconds, × the fastest) and saves
``benchmarks/results/race_speedrun.{json,png}``.

    TRAINWELL_DATA=/path/to/data python benchmarks/race_speedrun.py --seeds 0,1,2,3,4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTESTANTS = ("trainwell fit speedrun", "hand-written PyTorch loop", "Keras 3 (JAX)")


def _env(threads: int, cache: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               KERAS_BACKEND="jax", PYTHONPATH=str(ROOT / "src"),
               # Every cache starts empty with the race; the first seed pays for filling it:
               # trainwell's (decoded data, compiled kernels) and JAX's compiled programs.
               TRAINWELL_CACHE=str(Path(cache) / "trainwell"),
               JAX_COMPILATION_CACHE_DIR=str(Path(cache) / "jax"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    if threads == 1:  # XLA's CPU thread pool (it ignores OMP_NUM_THREADS)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            " intra_op_parallelism_threads=1").strip()
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds from process start to exit, CPU seconds (user + system) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def run_one(name: str, seed: int, env: dict[str, str]) -> dict:
    """One contestant, one seed, in a fresh process."""
    if name == CONTESTANTS[0]:
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, _ = _timed([sys.executable, "-m", "trainwell", "fit", "speedrun",
                                   "--seed", str(seed), "--quiet", "--out", tmp], env)
            summary = json.loads(next(Path(tmp).glob("*/summary.json")).read_text())
        acc = summary["metrics"]["final"]["test_accuracy"]
        train = summary["total_time"]
    else:
        script = "speedrun_torch.py" if name == CONTESTANTS[1] else "speedrun_keras.py"
        wall, cpu, out = _timed([sys.executable, str(HERE / "contestants" / script),
                                 str(seed)], env)
        result = json.loads(out.strip().splitlines()[-1])
        acc, train = result["test_accuracy"], result["train_seconds"]
    return {"contestant": name, "seed": seed, "seconds": wall, "cpu_seconds": cpu,
            "train_seconds": train, "test_accuracy": float(acc)}


def race(seeds: list[int], threads: int, names: tuple[str, ...] = CONTESTANTS) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = _env(threads, cache)
        for i, seed in enumerate(seeds):
            order = names[i % len(names):] + names[:i % len(names)]  # no one always first
            for name in order:
                row = run_one(name, seed, env)
                rows.append(row)
                print(f"seed {seed}  {name:<26} acc {row['test_accuracy']:.4f}  "
                      f"{row['seconds']:6.1f} s wall  {row['cpu_seconds']:6.1f} s CPU  "
                      f"{row['train_seconds']:6.1f} s training", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["contestant"] for r in rows))
    by = {n: sorted((r for r in rows if r["contestant"] == n), key=lambda r: r["seed"])
          for n in names}
    mean = {n: float(np.mean([r["seconds"] for r in by[n]])) for n in names}
    best = min(mean.values())
    seeds = ", ".join(str(r["seed"]) for r in by[names[0]])
    lines = [f"| contestant | test accuracy, seeds {seeds} | mean ± std | seconds, each | "
             "mean ± std | CPU s | training s | × fastest |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for n in sorted(names, key=mean.get):
        acc = [r["test_accuracy"] for r in by[n]]
        sec = [r["seconds"] for r in by[n]]
        lines.append(
            f"| {n} | {', '.join(f'{a:.4f}' for a in acc)} | {np.mean(acc):.4f} ± "
            f"{np.std(acc):.4f} | {', '.join(f'{s:.1f}' for s in sec)} | {np.mean(sec):.1f} ± "
            f"{np.std(sec):.1f} | {np.mean([r['cpu_seconds'] for r in by[n]]):.1f} | "
            f"{np.mean([r['train_seconds'] for r in by[n]]):.1f} | {mean[n] / best:.2f} |")
    return "\n".join(lines)


def save(rows: list[dict], meta: dict) -> Path:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "race_speedrun.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for n in dict.fromkeys(r["contestant"] for r in rows):
        rs = [r for r in rows if r["contestant"] == n]
        ax.scatter([r["seconds"] for r in rs], [r["test_accuracy"] for r in rs], label=n)
    ax.axhline(0.90, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("seconds from command to final test metric")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Fashion-MNIST speedrun race, {meta['threads']} thread(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "race_speedrun.png", dpi=120)
    return out / "race_speedrun.png"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of every contestant (torch OMP/MKL, XLA's pool); default 1")
    p.add_argument("--only", default="", help="comma-separated contestant numbers (1 = "
                   "trainwell, 2 = PyTorch loop, 3 = Keras), default all")
    a = p.parse_args()
    if "TRAINWELL_DATA" not in os.environ:
        raise SystemExit("set TRAINWELL_DATA to the folder holding fashion-mnist/")
    names = tuple(CONTESTANTS[int(i) - 1] for i in a.only.split(",")) if a.only else CONTESTANTS
    meta = {"threads": a.threads, "cpus": os.cpu_count(), "machine": platform.platform(),
            "load_before": os.getloadavg(), "command": " ".join(sys.argv)}
    rows = race([int(s) for s in a.seeds.split(",")], a.threads, names)
    meta["load_after"] = os.getloadavg()
    print(table(rows))
    print(f"threads {a.threads}, {meta['cpus']} CPUs, load average before "
          f"{meta['load_before'][0]:.1f}, after {meta['load_after'][0]:.1f}")
    print(f"plot: {save(rows, meta)}")


if __name__ == "__main__":
    main()
