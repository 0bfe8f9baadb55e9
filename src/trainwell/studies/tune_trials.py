"""Trials that outlive their process: who runs each trial, and failing the ones whose process
is gone (a SIGKILLed ``trainwell tune`` leaves its trial RUNNING in the study forever)."""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["record_owner", "fail_stale_trials"]


def record_owner(trial: Any) -> None:
    """Note the host and process running ``trial`` (read when the study is reopened)."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_stale_trials(study: Any) -> list[int]:
    """Mark FAIL every RUNNING trial whose process on this host is gone; their numbers."""
    import optuna

    host, stale = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
            continue  # another machine's trial, or still running: not ours to judge
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        stale.append(t.number)
    return stale
