"""The fixed cost of one short run: what `trainwell fit` spends besides the training epochs.

Two measurements of ``trainwell fit default --set train.epochs=1 --set data.train_limit=2000
--quiet``:

1. Per phase: the command runs in this process while a sampling thread looks at the main
   thread's stack every few milliseconds and charges the wall and CPU time between two looks
   to the phase it saw: imports of torch / torch._dynamo (the compiler; an eager run should
   not load it) / matplotlib (figures), loading the data, building model + optimizer, the
   training epoch, the final evaluation of the three splits, the run's artifacts (checkpoints,
   model, summary), the report (plots, report.html), and everything else (Python and CLI
   start-up, the recipe). An import is charged to itself wherever it happens; the phases do
   not overlap and add up to the whole.
2. The whole command as users see it: ``python -m trainwell fit ...`` as a fresh process,
   ``--repeat`` times (default 3), wall seconds from start to exit and the CPU seconds of the
   command's own process and of its figure worker (which draws the plots in parallel, see
   ``trainwell.report.figure_worker``); the first run may also fill the decoded-data cache,
   the others read it.

Run:

    OMP_NUM_THREADS=1 TRAINWELL_DATA=... python benchmarks/bench_fixed_cost.py [--out DIR]
        [--repeat 3]

Prints a Markdown table and one JSON line. CPU seconds are steadier than wall time on a busy
machine; the wall column is what a user waits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COMMAND = ["fit", "default", "--set", "train.epochs=1", "--set", "data.train_limit=2000",
           "--quiet"]

# Imports, charged to the outermost module being imported (torch._dynamo imports torch.fx...).
IMPORTS = [  # (label, path fragment of the module's file)
    ("import torch._dynamo", "/torch/_dynamo/"),
    ("import torch", "/torch/"),
    ("import matplotlib (figures)", "/matplotlib/"),
    ("import matplotlib (figures)", "/mpl_toolkits/"),
]
# Work, charged to the innermost matching function.
WORK = [  # (label, function name, file suffix)
    ("load data", "load_splits", "workflows/compose.py"),
    ("build model + optimizer", "build_from_recipe", "workflows/compose.py"),
    ("training epoch", "fit", "train/trainer.py"),
    ("final evaluation (3 splits)", "_metrics_block", "report/artifacts.py"),
    ("run artifacts + summary", "save_run_artifacts", "report/artifacts.py"),
    ("report: plots + report.html", "plot_confusion_matrix", "report/plots.py"),
    ("report: plots + report.html", "write_report", "report/rundir.py"),
]
OTHER = "start-up: Python, CLI, recipe, the rest"
LABELS = list(dict.fromkeys([label for label, _ in IMPORTS] + [w[0] for w in WORK] + [OTHER]))


def _phase(frame) -> str:
    stack = []
    while frame is not None:
        stack.append(frame.f_code)
        frame = frame.f_back
    for code in reversed(stack):  # outermost first: the import that was asked for
        if code.co_name == "<module>":
            path = code.co_filename.replace("\\", "/")
            for label, fragment in IMPORTS:
                if fragment in path:
                    return label
    for code in stack:  # innermost first
        path = code.co_filename.replace("\\", "/")
        for label, name, suffix in WORK:
            if code.co_name == name and path.endswith(suffix):
                return label
    return OTHER


class Sampler:
    """Charges wall and CPU time to the phase of the main thread, one look every ``every`` s."""

    def __init__(self, every: float = 0.002):
        self.every, self.main = every, threading.main_thread().ident
        self.wall = dict.fromkeys(LABELS, 0.0)
        self.cpu = dict.fromkeys(LABELS, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        label, wall, cpu = OTHER, time.perf_counter(), time.process_time()
        while not self._stop.is_set():
            time.sleep(self.every)
            now_wall, now_cpu = time.perf_counter(), time.process_time()
            self.wall[label] += now_wall - wall
            self.cpu[label] += now_cpu - cpu
            wall, cpu = now_wall, now_cpu
            frame = sys._current_frames().get(self.main)
            label = _phase(frame) if frame is not None else OTHER

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def profile_phases(out: str) -> tuple[dict[str, float], dict[str, float], float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with Sampler() as s:
        from trainwell.cli import main as cli_main
        try:
            cli_main([*COMMAND, "--out", out])
        except SystemExit:
            pass
    return s.cpu, s.wall, time.process_time() - cpu0, time.perf_counter() - wall0


# `python -m trainwell ...`, plus one line at exit: the CPU of this process and of its children
_WRAPPER = """
import atexit, json, resource, runpy, sys
def _report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write("\\nCPU " + json.dumps([own.ru_utime + own.ru_stime,
                                              kids.ru_utime + kids.ru_stime]) + "\\n")
atexit.register(_report)
sys.argv = ["trainwell", *sys.argv[1:]]
runpy.run_module("trainwell", run_name="__main__", alter_sys=True)
"""


def whole_command(out: str, repeat: int) -> list[dict[str, float]]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _WRAPPER, *COMMAND, "--out", out],
                             check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        wall = time.perf_counter() - t0
        line = [x for x in res.stderr.splitlines() if x.startswith("CPU ")][-1]
        own, worker = json.loads(line[4:])
        runs.append({"wall_s": round(wall, 3), "cpu_s": round(own, 3),
                     "worker_cpu_s": round(worker, 3)})
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for the runs (default: a temp folder)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="times the whole command runs as a fresh process (default 3; 0 = skip)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="trainwell-fixed-cost-")
    runs = whole_command(out, args.repeat)  # first: a fresh process is the user's view
    cpu, wall, cpu_all, wall_all = profile_phases(out)
    print(f"`trainwell {' '.join(COMMAND)}`, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs\n")
    print("| phase | CPU s | wall s |\n|---|---:|---:|")
    for label in LABELS:
        print(f"| {label} | {cpu[label]:.2f} | {wall[label]:.2f} |")
    print(f"| **in this process** | **{cpu_all:.2f}** | **{wall_all:.2f}** |")
    if runs:
        rest = runs[1:] or runs
        print(f"| **whole command, fresh process** (median of {len(rest)}"
              f"{', after a first run' if len(runs) > 1 else ''}) | "
              f"**{statistics.median(r['cpu_s'] for r in rest):.2f}** | "
              f"**{statistics.median(r['wall_s'] for r in rest):.2f}** |")
        print(f"| its figure worker, in parallel | "
              f"{statistics.median(r['worker_cpu_s'] for r in rest):.2f} | |")
    print(json.dumps({"cpu_s": cpu_all, "wall_s": wall_all, "phases_cpu_s": cpu,
                      "phases_wall_s": wall, "whole_command_runs": runs}))


if __name__ == "__main__":
    main()
