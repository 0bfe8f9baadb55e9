"""Phases of one fit: two-phase fine-tuning as a callback (:class:`Unfreeze`).

The chapter's transfer recipe — train the new head with the reused layers frozen, then unfreeze
them and go on with a lower learning rate — is one Trainer run: one loop, one step, one history
whose rows say which phase they belong to (``phase = "frozen" | "unfrozen"``). At the switch
the optimizer is rebuilt over the parameters that are trainable now (as Keras re-``compile``s,
so frozen parameters never hold optimizer state), and a named schedule starts again for the
second phase (:class:`PhaseSchedule`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from trainwell.nn.reuse import freeze, unfreeze
from trainwell.train.callbacks import Callback
from trainwell.train.rng import seed_everything

__all__ = ["PhaseSchedule", "Unfreeze"]


class PhaseSchedule:
    """A schedule started at step ``start``: ``lr_at(t) = schedule.lr_at(t − start)``."""

    def __init__(self, schedule: Any, *, start: int):
        self.schedule, self.start = schedule, int(start)

    def __getattr__(self, name: str) -> Any:  # name, base_lr, epochs, ... of the schedule
        return getattr(self.schedule, name)

    def lr_at(self, step: int) -> float:
        return self.schedule.lr_at(max(step - self.start, 0))

    def momentum_at(self, step: int) -> float | None:
        return self.schedule.momentum_at(max(step - self.start, 0))

    def on_epoch_end(self, epoch: int, metric: float | None) -> None:
        self.schedule.on_epoch_end(epoch, metric)

    def state_dict(self) -> dict[str, Any]:
        return {**self.schedule.state_dict(), "phase_start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict({k: v for k, v in state.items() if k != "phase_start"})


class Unfreeze(Callback):
    """Fine-tune in two phases of one fit: frozen reused layers, then unfrozen at a lower lr.

    Phase 1 (``"frozen"``) trains what is trainable when the fit starts (freeze the reused
    layers before: :func:`trainwell.nn.reuse.freeze`) for ``after_epochs`` epochs. Then the
    hidden blocks are frozen again and the top ``top_k`` unfrozen (``"all"``: every block), a
    new optimizer is built over the trainable parameters at ``lr × lr_factor`` (``optimizer``
    gives it: ``optimizer(model, lr)``; default: the same class and settings as the current
    one), the random seeds become ``seed`` (a new batch order; None keeps them) and the
    schedule starts again for the remaining epochs. ``callbacks`` join the fit for phase 2 only
    (e.g. EarlyStopping: stopping the short frozen phase early would skip fine-tuning). Every
    history row gets ``phase``.

    Example:
        >>> freeze(model)                                                   # doctest: +SKIP
        >>> Trainer(model, callbacks=[Unfreeze(4, lr_factor=0.1)]).fit(x, y, epochs=20)  # doctest: +SKIP
    """

    # last: the other callbacks see the switch epoch as it was trained (ModelCheckpoint saves
    # it), and the switch happens before the next epoch draws its batch order
    order = 200

    def __init__(self, after_epochs: int, top_k: int | str = "all", lr_factor: float = 0.1,
                 optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None,
                 seed: int | None = None, callbacks: Sequence[Callback] = ()):
        self.after_epochs, self.top_k, self.lr_factor = int(after_epochs), top_k, lr_factor
        self.optimizer, self.seed, self.callbacks = optimizer, seed, list(callbacks)
        self.unfrozen = False

    def on_fit_start(self, t) -> None:
        if self.after_epochs == 0:
            self._switch(t)   # no frozen phase
        elif not self.unfrozen:
            t.start_phase(epochs=self.after_epochs)   # the schedule spans phase 1

    def on_validation_end(self, t, epoch: int, logs: dict[str, Any]) -> None:
        logs["phase"] = "unfrozen" if self.unfrozen else "frozen"

    def on_epoch_end(self, t, epoch: int, logs: dict[str, Any]) -> None:
        if not self.unfrozen and epoch >= self.after_epochs and not t.stop_training \
                and t.epoch < t.epochs:
            self._switch(t)

    def _switch(self, t) -> None:
        self.unfrozen = True
        freeze(t.model)
        if self.top_k == "all" or int(self.top_k) > 0:
            unfreeze(t.model, self.top_k)
        lr = t.lr * self.lr_factor
        if self.optimizer is not None:
            opt = self.optimizer(t.model, lr)
        else:
            old = t.optimizer
            opt = type(old)([p for p in t.model.parameters() if p.requires_grad],
                            **{**old.defaults, "lr": lr})
        if self.seed is not None:
            seed_everything(self.seed)
            t.generator.manual_seed(self.seed)
        t.start_phase(opt)
        t.add_callbacks(self.callbacks)

    def state_dict(self) -> dict[str, Any]:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unfrozen = bool(state.get("unfrozen", False))
