"""The Trainer's state for exact resume (plain tensors and primitives) and its Ctrl-C/SIGTERM
handling (finish the step, then stop cleanly)."""

from __future__ import annotations

import copy
import signal
import threading
import time
from typing import Any

import trainwell.train.distributed as distributed
from trainwell.errors import CheckpointError
from trainwell.train.device import _unwrap
from trainwell.train.history import History
from trainwell.train.rng import get_rng_state, set_rng_state

__all__ = ["CHECKPOINT_FORMAT", "StateMixin"]

#: Version of the checkpoint dict layout written by :meth:`Trainer.state_dict`.
CHECKPOINT_FORMAT = 1


class StateMixin:
    """``state_dict``/``load_state_dict`` and signal handling of :class:`~trainwell.train.Trainer`."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain tensors and primitives.

        Keys: ``format``, ``model`` (the uncompiled model's state_dict), ``optimizer``,
        ``schedule``, ``callbacks`` (by stable key), ``rng`` (torch CPU/CUDA, NumPy, Python),
        ``generator`` (shuffling) and ``epoch_generator`` (its state at the start of the
        current epoch), ``batch_in_epoch``, ``sums``/``seen`` (the current epoch's metric
        sums), ``step``, ``epoch``, ``epochs``, ``history``, ``status``, ``stop_training``.
        """
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {k: v.detach().clone() for k, v in _unwrap(self.model).state_dict().items()},
            # A snapshot: torch's optimizer state_dict shares tensors updated in place.
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "callbacks": self.callbacks.state_dict(),
            "rng": get_rng_state(),
            # under DDP, every worker's own random state (dropout masks), by rank
            "rng_ranks": (distributed.all_gather_object(get_rng_state())
                          if distributed.is_distributed() else None),
            "precision": self.precision.state_dict(),
            "generator": self.generator.get_state(),
            "epoch_generator": self._epoch_gen_state,
            "batch_in_epoch": self.batch_in_epoch,
            "sums": {k: v.detach().cpu().clone() for k, v in self._sums.items()},
            "seen": self._seen,
            "step": self.step,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "history": self.history.to_list(),
            "status": self.status,
            "stop_training": self.stop_training,
            "divergence": self.divergence,
            "data": self._data,
            "epoch_time": (time.perf_counter() - self._epoch_t0) if self.batch_in_epoch else 0.0,
            "train_time": self.train_time,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``fit`` continues where it stopped.

        Raises:
            CheckpointError: the state does not come from a trainwell Trainer or does not fit
                this model.
        """
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError("not a trainwell training checkpoint (format "
                                  f"{state.get('format') if isinstance(state, dict) else None})")
        try:
            _unwrap(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"the checkpoint does not fit this model/optimizer: {e}") from e
        self.callbacks.load_state_dict(state["callbacks"])
        self.generator.set_state(state["generator"])
        self._epoch_gen_state = state["epoch_generator"]
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self._sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self._seen = int(state["seen"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.epochs = int(state["epochs"])
        self.history = History(state["history"])
        self.status = state["status"]
        self.stop_training = bool(state["stop_training"])
        self.divergence = state.get("divergence")
        self._data = state.get("data")
        self._epoch_time_before = float(state.get("epoch_time") or 0.0)
        self._train_time_before = float(state.get("train_time") or 0.0)
        ranks = state.get("rng_ranks")
        if ranks and len(ranks) == distributed.world_size():
            set_rng_state(ranks[distributed.rank()])
        else:
            set_rng_state(state["rng"])
        self.precision.load_state_dict(state.get("precision"))
        self._pending = {"schedule": state["schedule"]}  # applied once fit builds the schedule
        self._resumed = True

    def _apply_pending(self) -> None:
        sched = self._pending.get("schedule") if self._pending else None
        if sched is not None and self.schedule is not None:
            self.schedule.load_state_dict(sched)
        self._pending = None

    # ------------------------------------------------------------------ Ctrl-C and SIGTERM
    def _install_sigint(self) -> dict[int, Any]:
        self._interrupt = self._hard_interrupt = False
        self.interrupt_signal = None
        if threading.current_thread() is not threading.main_thread() \
                or distributed.is_distributed():  # torchrun's launcher stops the workers
            return {}

        def handler(signum, frame):
            if self._interrupt:  # a second signal: stop now
                self._hard_interrupt = True
                raise KeyboardInterrupt
            self._interrupt = True  # finish the current step, then stop cleanly
            self.interrupt_signal = signum

        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if sig is None:
                continue
            try:
                current = signal.getsignal(sig)
                if current is signal.SIG_IGN or current is None:  # nohup, background jobs
                    continue
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
        return previous

    def _restore_sigint(self, previous: dict[int, Any]) -> None:
        for sig, handler in (previous or {}).items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
