"""The Trainer's optimizer, schedule and step object: built for a fit, started again for a
phase (fine-tuning's unfrozen phase), rebuilt when the trainable parameters change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainwell.train.callbacks import Callback, CallbackList
from trainwell.train.metrics import MetricSet
from trainwell.train.phases import PhaseSchedule
from trainwell.train.step import TrainStep, needs_eager_step

__all__ = ["PhasesMixin"]


class PhasesMixin:
    """Schedule, phases and the step object of :class:`~trainwell.train.Trainer`."""

    def _build_schedule(self) -> None:
        if self.schedule is not None and not isinstance(self.schedule_spec, str):
            return
        from trainwell.optim import make_schedule
        base_lr = self.lr
        self.schedule = make_schedule(self.schedule_spec, base_lr=base_lr,
                                      steps_per_epoch=self.steps_per_epoch, epochs=self.epochs,
                                      **self.schedule_params)

    def _adopt_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        # The optimizer's own lr is η0; per-group lrs become scales the schedule keeps.
        groups = optimizer.param_groups
        self.lr = float(groups[0]["lr"]) / groups[0].get("lr_scale", 1.0)
        for g in groups:
            g.setdefault("lr_scale", float(g["lr"]) / self.lr)

    def start_phase(self, optimizer: torch.optim.Optimizer | None = None, *,
                    epochs: int | None = None) -> None:
        """Begin a phase of this fit: a new optimizer and/or the schedule started again.

        Call it from a callback (``on_fit_start`` or ``on_epoch_end``), e.g. after unfreezing
        layers (:class:`~trainwell.train.Unfreeze`). The optimizer's lr becomes η0; a named
        schedule starts again from its first step at the current step, spanning ``epochs``
        epochs (default: the rest of the run); the training step is rebuilt over the
        parameters that are trainable now.
        """
        if optimizer is not None:
            self._adopt_optimizer(optimizer)
            self.optimizer_name = type(optimizer).__name__
        if isinstance(self.schedule_spec, str):
            from trainwell.optim import make_schedule

            n = epochs if epochs is not None else max(self.epochs - self.epoch, 1)
            inner = make_schedule(self.schedule_spec, base_lr=self.lr,
                                  steps_per_epoch=self.steps_per_epoch, epochs=n,
                                  **self.schedule_params)
            self.schedule = inner if self.step == 0 else PhaseSchedule(inner, start=self.step)
        self._apply_lr()
        self._setup_step()

    def add_callbacks(self, callbacks: Iterable[Callback]) -> None:
        """Callbacks that join a running fit (e.g. a phase's early stopping): they get
        ``on_fit_start`` now and every event from the next one on."""
        new = list(callbacks)
        if not new:
            return
        self.callbacks = CallbackList([*self.callbacks, *new])
        for cb in sorted(new, key=lambda c: c.order):
            cb.on_fit_start(self)
        if self.train_step is not None:
            self._setup_step()

    def _apply_lr(self) -> None:
        from trainwell.optim import apply_schedule
        apply_schedule(self.optimizer, self.schedule, self.step)


    def _setup_step(self) -> None:
        """The step object for this fit: reused while the trainable parameters and the
        optimizer stay the same (a compiled graph is kept), rebuilt after (un)freezing."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        ts = self.train_step
        if ts is None or ts.optimizer is not self.optimizer \
                or list(map(id, ts.params)) != list(map(id, params)):
            ts = self.train_step = TrainStep(
                self.model, self.task.loss, self.optimizer, **self.clip, l1=self.l1,
                l2=self.l2, max_norm=self.max_norm, compile=self.compile,
                precision=self.precision, forward=self._ddp,
                compile_options=self._compile_options())
        ts.cache_key = getattr(self, "_compile_key", None)  # noted once the graph is built
        ts.set_schedule(self.schedule)
        cbs = self.callbacks
        self._after_backward_cbs = cbs.after_backward
        ts.after_backward = self._after_backward if cbs.after_backward else None
        eager = cbs.eager_step
        ts.needs_eager = (lambda step: needs_eager_step(eager, step)) if eager else None

    def _graph_key(self, batch_size: int) -> str:
        from trainwell.train.compile_cache import graph_key
        loss = self.task.loss  # by name and task: a repr may carry a memory address
        loss = (getattr(loss, "__qualname__", type(loss).__qualname__),
                repr(getattr(loss, "__self__", "")))
        return graph_key(self.model, self.optimizer, batch_size, loss=loss,
                         l1=self.l1, l2=self.l2, max_norm=self.max_norm, **self.clip)

    def _decide_compile(self, batch_size: int) -> None:
        """``compile = "auto"``: compile a run long enough to pay for it — sooner when this
        step's graph is already in the disk cache (train/compile_cache.py)."""
        if self.compile_mode is False:
            return
        from trainwell.train.compile_cache import graph_is_cached, resolve_compile
        self._compile_key = self._graph_key(batch_size)
        if self.compile_mode == "auto":
            self.compile = resolve_compile("auto", self.steps_per_epoch * self.epochs,
                                           cached=graph_is_cached(self._compile_key))

    def _compile_options(self) -> dict[str, Any] | None:
        """On CUDA, CUDA graphs too: inductor replays the whole step's kernels at once where
        the step allows it (it skips them itself otherwise). Untested without a GPU."""
        if self.device.type != "cuda":
            return None
        return {"options": {"triton.cudagraphs": True}}

    def _ensure_metric_sets(self, n_outputs: int) -> None:
        if self.metrics and self._metric_sets is None:
            self._metric_sets = tuple(  # (train, evaluation)
                MetricSet(self.metrics, self.task.name, n_outputs, self.device,
                          unpack=self._unpack_targets) for _ in range(2))

    def _unpack_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        unpack = getattr(self.task, "unpack", None)  # weighted targets: (targets, weights)
        return unpack(y) if unpack is not None else (y, None)

    def _new_sums(self) -> dict[str, torch.Tensor]:
        penalized = self.l1 > 0 or self.l2 > 0
        names = ["loss", *self.task.metrics] + (["penalty"] if penalized else [])
        return {k: torch.zeros((), dtype=torch.float64, device=self.device) for k in names}
