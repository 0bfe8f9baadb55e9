"""Runs ``trainwell`` and SIGKILLs itself at the N-th occurrence of one kind of moment.

    python fault_worker.py KIND N -- fit RECIPE --out DIR --quiet

KIND: ``write`` (a file is fully written to its temporary name, not yet renamed: the kill
leaves the temporary file), ``rename`` (just before a rename; for a checkpoint that is
between ``last.pt`` → ``last.prev.pt`` and the new file → ``last.pt``), ``batch`` (a
training batch is being drawn, mid-epoch), ``validation`` (the epoch's validation pass).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    kind, n = sys.argv[1], int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    count = {"n": 0}

    def tick() -> None:
        count["n"] += 1
        if count["n"] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name):
        original = getattr(owner, name)

        def patched(*a, **kw):
            tick()
            return original(*a, **kw)

        setattr(owner, name, patched)

    from trainwell import atomic
    from trainwell.train import batches, trainer

    if kind == "write":
        wrap(atomic.os, "fsync")  # module os: every fsync of a completed temporary file
    elif kind == "rename":
        wrap(atomic.os, "replace")
    elif kind == "batch":
        wrap(batches.BatchIterator, "batch")
    elif kind == "validation":
        wrap(trainer.Trainer, "_evaluate")
    else:
        raise SystemExit(f"unknown kind {kind}")
    from trainwell.cli import main as cli

    sys.argv = ["trainwell", *args]
    cli()


if __name__ == "__main__":
    main()
