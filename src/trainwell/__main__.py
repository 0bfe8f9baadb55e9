"""``python -m trainwell``: the ``trainwell`` command, also as a torchrun worker.

``torchrun --nnodes 2 --nproc-per-node 4 ... -m trainwell fit RECIPE`` starts this module in
every worker; an error that escapes a worker is recorded for torchrun, which reports it with the
worker's rank.
"""

from __future__ import annotations

import os
import sys
import traceback

from trainwell.cli import main


def _run() -> None:
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        main()
        return
    try:
        main()
    except Exception as exc:  # a torchrun worker: the launcher names the rank and the error
        from trainwell.cli.launch import is_peer_lost, record_worker_error

        if not is_peer_lost(f"{type(exc).__name__}: {exc}"):
            record_worker_error(exc)  # the cause: for the launcher's message
            traceback.print_exc()
        sys.exit(1)  # a worker that only lost its peer says nothing: the cause is elsewhere


if __name__ == "__main__":
    _run()
