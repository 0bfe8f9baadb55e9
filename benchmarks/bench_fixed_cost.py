"""The fixed cost of one short run: what `trainwell fit` spends besides the training epochs.

Runs ``trainwell fit default --set train.epochs=1 --set data.train_limit=2000 --quiet`` in this
process under cProfile with a CPU clock (CPU seconds are steadier than wall time on a busy
machine) and prints the time of each phase: imports of torch / torch._dynamo (every
``torch.optim`` optimizer imports it when built) / matplotlib, loading the data, building
model and optimizer, the training epoch, the final evaluation of the three splits, the run's
artifacts (checkpoints, model, summary) and the report (plots, report.html). Run:

    OMP_NUM_THREADS=1 TRAINWELL_DATA=... python benchmarks/bench_fixed_cost.py [--out DIR]

Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time

PHASES = [  # (label, function name as cProfile reports it, file suffix)
    ("import torch", "<module>", "torch/__init__.py"),
    ("import torch._dynamo (built with the optimizer)", "<module>", "torch/_dynamo/__init__.py"),
    ("import matplotlib (figures)", "<module>", "matplotlib/pyplot.py"),
    ("load data", "load_splits", "workflows/compose.py"),
    ("build model + optimizer", "build_from_recipe", "workflows/compose.py"),
    ("training epoch", "fit", "train/trainer.py"),
    ("final evaluation (3 splits)", "_metrics_block", "report/artifacts.py"),
    ("run artifacts + summary", "save_run_artifacts", "report/artifacts.py"),
    ("report: plots + report.html", "write_report", "report/rundir.py"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for the run (default: a temp folder)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="trainwell-fixed-cost-")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    from trainwell.cli import main as cli_main
    try:
        cli_main(["fit", "default", "--set", "train.epochs=1", "--set", "data.train_limit=2000",
                  "--out", out, "--quiet"])
    except SystemExit:
        pass
    prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    rows = {}
    for label, name, suffix in PHASES:
        rows[label] = sum(v[3] for (f, _, n), v in stats.items()
                          if n == name and f.replace("\\", "/").endswith(suffix))
    print("| phase | CPU s |\n|---|---:|")
    for label, seconds in rows.items():
        print(f"| {label} | {seconds:.2f} |")
    print(f"| **whole command** | **{cpu:.2f}** (wall {wall:.1f} s) |")
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "phases_cpu_s": rows}))


if __name__ == "__main__":
    main()
