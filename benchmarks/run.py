"""Speed benchmark: trainwell against plain PyTorch, Keras 3 and Lightning, side by side.

Usage::

    python benchmarks/run.py                      # model A + the CIFAR-sized network
    python benchmarks/run.py --workloads model_a --epochs 5
    python benchmarks/run.py --peer-python /path/to/venv/bin/python   # where keras/jax/lightning live
    python benchmarks/run.py --nproc 2 --precision bf16   # + DDP on 2 processes, + bf16 autocast

Each contestant runs in its own process, one after another, on the same data file; with
``--rounds R`` the whole list runs R times in turn (A B C … A B C …, so that a busy machine
slows every contestant alike) and the epoch times are pooled. The table gives the median and
min epoch time over ``--epochs`` timed epochs (× rounds) after ``--warmup`` untimed ones, the
first epoch (compilation included, for compiled modes), samples/s, and the ratio to the
fastest contestant and to the matmul floor measured in the same run. ``--threads N`` pins
torch's (and OpenMP/MKL's) thread count in every contestant. ``--tta`` also measures the time
for the best built-in Fashion-MNIST recipe to reach 0.88 test accuracy (needs the data under
``TRAINWELL_DATA``). Results go to ``benchmarks/results/<time>/`` as JSON and a PNG.
Optional peers (``pip install "trainwell[bench]"``): keras, jax, lightning; missing ones are
reported as skipped.
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
sys.path.insert(0, str(HERE))
from common import WORKLOADS, Workload  # noqa: E402


def make_data(w: Workload, out: Path, real: bool) -> tuple[Path, str]:
    """Write the workload's training data; model A uses the real 8-class Fashion-MNIST task."""
    path = out / f"{w.name}.npz"
    if real and w.name == "model_a":
        try:
            from trainwell.data import load_dataset, transfer_split

            splits = transfer_split(load_dataset("fashion_mnist", flatten=True, progress=False),
                                    task="A")
            x = splits.x_train.numpy().reshape(len(splits.x_train), -1)[: w.n_samples]
            y = splits.y_train.numpy()[: w.n_samples]
            np.savez(path, x=x, y=y)
            return path, f"Fashion-MNIST task A ({len(x)} images)"
        except Exception as exc:  # the benchmark still runs on random data of the same shape
            print(f"[data] real Fashion-MNIST unavailable ({exc}); using random data")
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.standard_normal((w.n_samples, w.n_inputs), dtype=np.float32),
             y=rng.integers(0, w.n_classes, w.n_samples))
    return path, f"random ({w.n_samples}×{w.n_inputs})"


def contestants(peer_python: str, compiled: bool, nproc: int = 1,
                precision: str = "fp32") -> list[tuple[str, list[str], dict]]:
    """(label, argv prefix, extra env) for every contestant, in the order they run."""
    me, c = sys.executable, str(HERE / "contestants")
    rows = [
        ("matmul floor", [me, f"{c}/matmul_floor.py"], {}),
        ("trainwell (eager)", [me, f"{c}/trainwell_fit.py"], {"__mode": "eager"}),
        ("trainwell (default)", [me, f"{c}/trainwell_fit.py"], {"__mode": "default"}),
    ]
    if compiled:
        rows.append(("trainwell (compiled)", [me, f"{c}/trainwell_fit.py"], {"__mode": "compiled"}))
    if precision == "bf16":
        rows.append(("trainwell (bf16)", [me, f"{c}/trainwell_fit.py"], {"__mode": "bf16"}))
    if nproc > 1:  # the same global batch over N workers (gloo on CPU), torch's own launcher
        rows.append((f"trainwell (DDP ×{nproc})",
                     [me, "-m", "torch.distributed.run", "--standalone",
                      f"--nproc-per-node={nproc}", f"{c}/trainwell_fit.py"], {"__mode": "ddp"}))
    rows += [
        ("pytorch loop (tensor index)", [me, f"{c}/torch_tensor.py"], {}),
        ("pytorch loop + torch.compile(model)", [me, f"{c}/torch_tensor.py"],
         {"__mode": "compile"}),
        ("pytorch DataLoader loop", [me, f"{c}/torch_dataloader.py"], {}),
        ("keras (jax)", [peer_python, f"{c}/keras_fit.py"], {"KERAS_BACKEND": "jax"}),
        ("keras (torch)", [peer_python, f"{c}/keras_fit.py"], {"KERAS_BACKEND": "torch"}),
        ("lightning", [peer_python, f"{c}/lightning_fit.py"], {}),
    ]
    return rows


def run_one(argv: list[str], env_extra: dict, w: Workload, data: Path, warmup: int, epochs: int,
            timeout: float) -> dict:
    env = dict(os.environ)
    mode = env_extra.pop("__mode", None) if "__mode" in env_extra else None
    env.update(env_extra)
    args = [*argv, w.to_json(), str(data), str(warmup), str(epochs)]
    if mode:
        args.append(mode)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": err[:200]}
    return json.loads(lines[-1])


def summarize(results: dict[str, dict], w: Workload) -> list[dict]:
    rows = []
    for label, r in results.items():
        if "epoch_times" not in r:
            rows.append({"tool": label, "skipped": r.get("error", "?")})
            continue
        t = r["epoch_times"]
        firsts = r.get("first_epoch_s") or []
        rows.append({"tool": r.get("name", label), "median_s": statistics.median(t), "min_s": min(t),
                     "first_s": statistics.median(firsts) if firsts else None,
                     "samples_per_s": w.n_samples / statistics.median(t), "epochs": len(t),
                     "threads": r.get("threads")})
    timed = [r for r in rows if "median_s" in r and r["tool"] != "matmul floor"]
    fastest = min((r["median_s"] for r in timed), default=float("nan"))
    floor = next((r["median_s"] for r in rows if r.get("tool") == "matmul floor"), float("nan"))
    for r in rows:
        if "median_s" in r:
            r["vs_fastest"] = r["median_s"] / fastest
            r["vs_floor"] = r["median_s"] / floor
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n### {title}\n")
    print("| tool | median s/epoch | min s/epoch | first epoch s | samples/s | × fastest "
          "| × matmul floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "median_s" in r:
            first = f"{r['first_s']:.1f}" if r.get("first_s") is not None else ""
            print(f"| {r['tool']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {first} | "
                  f"{r['samples_per_s']:,.0f} | {r['vs_fastest']:.2f} | {r['vs_floor']:.2f} |")
        else:
            print(f"| {r['tool']} | skipped: {r['skipped']} | | | | | |")


def merge(runs: list[dict]) -> dict:
    """Pool the epoch times of several rounds of one contestant."""
    ok = [r for r in runs if "epoch_times" in r]
    if not ok:
        return runs[-1]
    out = dict(ok[-1])
    out["epoch_times"] = [t for r in ok for t in r["epoch_times"]]
    out["first_epoch_s"] = [r["first_epoch_s"] for r in ok if r.get("first_epoch_s") is not None]
    out["rounds"] = len(ok)
    return out


def time_to_accuracy(recipe: str, target: float, modes: list[str], timeout: float) -> list[dict]:
    """Run the time-to-accuracy contestant once per trainwell mode."""
    rows = []
    for mode in modes:
        print(f"[time to accuracy] {recipe} ({mode}) …", flush=True)
        try:
            proc = subprocess.run([sys.executable, str(HERE / "contestants" / "time_to_accuracy.py"),
                                   recipe, str(target), mode], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            rows.append({"mode": mode, "error": f"timed out after {timeout:.0f} s"})
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"mode": mode, "error": err[:200]})
        else:
            rows.append(json.loads(lines[-1]))
    return rows


def print_tta(rows: list[dict], recipe: str, target: float) -> None:
    print(f"\n### time to {target} test accuracy: built-in recipe `{recipe}` on Fashion-MNIST\n")
    print("| trainwell mode | seconds of training | epochs | test accuracy |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        if "error" in r:
            print(f"| {r['mode']} | failed: {r['error']} | | |")
        elif r.get("reached") is None:
            best = max((c["test_accuracy"] for c in r.get("curve", [])), default=float("nan"))
            print(f"| {r['mode']} | not reached | {len(r.get('curve', []))} | {best:.4f} (best) |")
        else:
            h = r["reached"]
            print(f"| {r['mode']} | {h['seconds']:.1f} | {h['epoch']} | {h['test_accuracy']:.4f} |")


def plot(all_rows: dict[str, list[dict]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_rows), figsize=(6 * len(all_rows), 4), squeeze=False)
    for ax, (title, rows) in zip(axes[0], all_rows.items(), strict=True):
        timed = [r for r in rows if "median_s" in r]
        ax.barh([r["tool"] for r in timed], [r["median_s"] for r in timed],
                color=["#2a9d8f" if r["tool"].startswith("trainwell") else "#8d99ae" for r in timed])
        ax.invert_yaxis()
        ax.set_xlabel("median seconds per epoch (lower is better)")
        ax.set_title(title)
    fig.tight_layout()
    path = out / "epoch_times.png"
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="model_a,cifar_dnn,cifar_dnn_bn")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after the warm-up)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--peer-python", default=sys.executable,
                   help="python that has keras/jax/lightning installed (default: this one)")
    p.add_argument("--only", default="", help="comma-separated contestant labels to run")
    p.add_argument("--no-compiled", action="store_true", help="skip trainwell's compiled mode")
    p.add_argument("--random-data", action="store_true", help="random data even for model A")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the contestant list this many times in turn and pool the epochs")
    p.add_argument("--threads", type=int, default=0,
                   help="torch/OpenMP/MKL threads in every contestant (0 = their default)")
    p.add_argument("--tta", action="store_true",
                   help="also measure time to --tta-target test accuracy with --tta-recipe")
    p.add_argument("--tta-recipe", default="default")
    p.add_argument("--tta-target", type=float, default=0.88)
    p.add_argument("--nproc", type=int, default=1,
                   help="also run trainwell on N processes (DDP; the same global batch)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: also run trainwell with bf16 autocast")
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="cpu: epoch times in CPU seconds of each contestant's process (steadier "
                        "than wall time on a shared machine; use with --threads 1)")
    p.add_argument("--planned-epochs", type=int, default=20,
                   help="trainwell (default) decides compile = \"auto\" as for a run of this "
                        "many epochs (model A in the chapter: 20)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)

    thread_env = {"TRAINWELL_BENCH_CLOCK": args.clock,
                  "TRAINWELL_BENCH_PLANNED_EPOCHS": str(args.planned_epochs)}
    if args.threads > 0:
        n = str(args.threads)
        thread_env.update(TRAINWELL_BENCH_THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n)
        if args.threads == 1:  # JAX/XLA: one intra-op thread as well
            thread_env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
        os.environ.update(thread_env)  # the time-to-accuracy run too
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict] = {}
    all_rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads.split(","):
            w = WORKLOADS[name]
            data, data_desc = make_data(w, Path(tmp), real=not args.random_data)
            runs: dict[str, list[dict]] = {}
            for rnd in range(args.rounds):
                for label, cmd, env in contestants(args.peer_python, not args.no_compiled,
                                                     args.nproc, args.precision):
                    if args.only and label not in args.only.split(","):
                        continue
                    print(f"[{name}] round {rnd + 1}/{args.rounds}: {label} …", flush=True)
                    env = {**env, **thread_env}
                    runs.setdefault(label, []).append(
                        run_one(cmd, env, w, data, args.warmup, args.epochs, args.timeout))
            results = {label: merge(r) for label, r in runs.items()}
            rows = summarize(results, w)
            title = f"{name}: {w.hidden[0]}… ×{len(w.hidden)} {w.activation}, batch {w.batch_size}, {w.optimizer}; {data_desc}"
            print_table(title, rows)
            all_rows[title] = rows
            report[name] = {"workload": json.loads(w.to_json()), "data": data_desc, "rows": rows,
                            "raw": results}
    if args.tta:
        tta = time_to_accuracy(args.tta_recipe, args.tta_target,
                               ["eager"] + ([] if args.no_compiled else ["compiled"]), args.timeout)
        print_tta(tta, args.tta_recipe, args.tta_target)
        report["time_to_accuracy"] = {"recipe": args.tta_recipe, "target": args.tta_target,
                                      "rows": tta}
    import torch

    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                         "torch": torch.__version__, "threads": args.threads or "default",
                         "rounds": args.rounds, "clock": args.clock,
                         "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\nsaved {out / 'results.json'} and {plot(all_rows, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
