"""Learning-rate schedules as pure functions of the iteration counter t.

A :class:`Schedule` answers ``lr_at(t)`` and ``momentum_at(t)`` for any step t (0-based), so
it can be plotted without training and resumed exactly from the counter alone. Only
performance scheduling keeps state (fed by ``on_epoch_end``), saved by ``state_dict``.

``step="iteration"`` (default) evaluates the formulas below at the iteration t, with lengths
(``decay_steps``, the 1cycle) in iterations; ``step="epoch"`` evaluates them at the epoch
index e = ⌊t / steps_per_epoch⌋ with lengths in epochs, so the rate is constant within an
epoch — Keras' ``LearningRateScheduler`` and the chapter's ``exponential_decay_fn(epoch)``.

- ``constant``:    η(t) = η0
- ``power``:       η(t) = η0 / (1 + t/s)^c          (``decay_steps`` = s, ``power`` = c)
- ``exponential``: η(t) = η0 · 0.1^(t/s)            (÷10 every s steps)
- ``piecewise``:   η = values[i] while boundaries[i-1] ≤ epoch < boundaries[i]
- ``performance``: η ← max(η·λ, min_lr) after ``patience`` epochs without improvement
- ``onecycle``:    η rises linearly max_lr/start_div → max_lr, falls back to max_lr/start_div,
  then anneals to max_lr/final_div; momentum goes max → min → max inversely.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from trainwell import checks
from trainwell.errors import CheckpointError, ConfigError
from trainwell.registry import Registry

__all__ = [
    "SCHEDULES", "STEP_UNITS", "Schedule", "ConstantSchedule", "PowerSchedule", "ExponentialSchedule",
    "PiecewiseSchedule", "PerformanceSchedule", "OneCycleSchedule", "make_schedule",
    "apply_schedule",
]


STEP_UNITS = ("iteration", "epoch")


class Schedule:
    """Base class: the learning rate (and optionally momentum) at iteration ``step``.

    Subclasses implement ``_lr(t)`` (and ``_momentum(t)``) of the schedule's own counter t:
    the iteration, or the epoch index with ``step="epoch"``; ``units`` is the run's length
    in that counter.

    Attributes:
        name: registry name. base_lr: η0. steps_per_epoch, epochs: the run's length.
        step: ``"iteration"`` or ``"epoch"`` (what the counter counts).
        steps_in_epochs: True when the user gave the schedule's points in epochs.
    """

    name: ClassVar[str] = "base"
    steps_in_epochs: ClassVar[bool] = False

    def __init__(self, *, base_lr: float, steps_per_epoch: int, epochs: int,
                 step: str = "iteration"):
        self.base_lr = checks.check_field("optimizer.lr", base_lr)
        self.steps_per_epoch = checks.integer("schedule.steps_per_epoch", steps_per_epoch, 1)
        self.epochs = checks.integer("train.epochs", epochs, 1)
        key = step.strip().lower() if isinstance(step, str) else step
        if key not in STEP_UNITS:
            raise ConfigError("schedule.step", step, STEP_UNITS)
        self.step = key

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def units(self) -> int:
        """The run's length in the schedule's counter (iterations, or epochs)."""
        return self.epochs if self.step == "epoch" else self.total_steps

    def counter(self, step: int) -> int:
        """The schedule's counter at iteration ``step``: ``step`` or its epoch index."""
        return step // self.steps_per_epoch if self.step == "epoch" else step

    def lr_at(self, step: int) -> float:
        """Learning rate for iteration ``step`` (0-based)."""
        return self._lr(self.counter(step))

    def momentum_at(self, step: int) -> float | None:
        """Momentum (β or β1) for ``step``, or None when this schedule does not cycle it."""
        return self._momentum(self.counter(step))

    def _lr(self, t: int) -> float:
        return self.base_lr

    def _momentum(self, t: int) -> float | None:
        return None

    def on_epoch_end(self, epoch: int, metric: float | None) -> None:
        """Called once per epoch with the monitored validation metric (performance only)."""

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise CheckpointError(
                f"schedule state is for {state.get('name')!r}, this run uses {self.name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr}, total_steps={self.total_steps})"


class ConstantSchedule(Schedule):
    """η(t) = η0.

    Example:
        >>> ConstantSchedule(base_lr=0.1, steps_per_epoch=10, epochs=2).lr_at(15)
        0.1
    """

    name = "constant"


class PowerSchedule(Schedule):
    """Power scheduling η(t) = η0 / (1 + t/s)^c.

    Args:
        decay_steps: s in iterations (epochs with ``step="epoch"``; default: the whole run).
            Keras ``decay=d`` is s = 1/d.
        power: c (default 1).

    Example:
        >>> PowerSchedule(base_lr=0.01, steps_per_epoch=10, epochs=1, decay_steps=5).lr_at(5)
        0.005
    """

    name = "power"

    def __init__(self, *, decay_steps: float | None = None, power: float = 1.0, **base: Any):
        super().__init__(**base)
        s = self.units if decay_steps is None else decay_steps
        self.decay_steps = checks.number("schedule.decay_steps", s, lambda v: v > 0, "a number > 0")
        self.power = checks.check_field("schedule.power", power)

    def _lr(self, t: int) -> float:
        return self.base_lr / (1.0 + t / self.decay_steps) ** self.power


class ExponentialSchedule(Schedule):
    """Exponential scheduling η(t) = η0 · 0.1^(t/s): the rate drops 10× every s steps.

    Args:
        decay_steps: s in iterations (epochs with ``step="epoch"``; default: the whole run).

    Example:
        >>> s = ExponentialSchedule(base_lr=0.01, steps_per_epoch=10, epochs=1, decay_steps=5)
        >>> round(s.lr_at(10), 8)
        0.0001
    """

    name = "exponential"

    def __init__(self, *, decay_steps: float | None = None, **base: Any):
        super().__init__(**base)
        s = self.units if decay_steps is None else decay_steps
        self.decay_steps = checks.number("schedule.decay_steps", s, lambda v: v > 0, "a number > 0")

    def _lr(self, t: int) -> float:
        return self.base_lr * 0.1 ** (t / self.decay_steps)


class PiecewiseSchedule(Schedule):
    """Piecewise constant scheduling with boundaries in epochs.

    ``values[i]`` is used from epoch ``boundaries[i-1]`` (inclusive) to ``boundaries[i]``;
    a boundary b becomes step ``round(b · steps_per_epoch)``.

    Args:
        boundaries: increasing epochs > 0 where the rate changes.
        values: len(boundaries) + 1 rates; default η0·0.1^i.

    Example (Géron: 0.01 until epoch 5, 0.005 until 15, then 0.001):
        >>> s = PiecewiseSchedule(base_lr=0.01, steps_per_epoch=10, epochs=20,
        ...                       boundaries=[5, 15], values=[0.01, 0.005, 0.001])
        >>> s.lr_at(49), s.lr_at(50), s.lr_at(150)
        (0.01, 0.005, 0.001)
    """

    name = "piecewise"
    steps_in_epochs = True

    def __init__(self, *, boundaries: Sequence[float] | None = None,
                 values: Sequence[float] | None = None, **base: Any):
        super().__init__(**base)
        accepted = "a non-empty increasing list of epochs > 0"
        if boundaries is None or isinstance(boundaries, (str, bytes)) or not len(boundaries):
            raise ConfigError("schedule.boundaries", boundaries, accepted)
        b = [checks.number("schedule.boundaries", x, lambda v: v > 0, accepted) for x in boundaries]
        if any(x >= y for x, y in zip(b, b[1:], strict=False)):
            raise ConfigError("schedule.boundaries", list(boundaries), accepted)
        if values is None:
            values = [self.base_lr * 0.1 ** i for i in range(len(b) + 1)]
        if isinstance(values, (str, bytes)) or len(values) != len(b) + 1:
            raise ConfigError("schedule.values", values,
                              f"a list of {len(b) + 1} learning rates (len(boundaries) + 1)")
        self.values = [checks.number("schedule.values", v, lambda v: v > 0, "learning rates > 0")
                       for v in values]
        self.boundaries = b
        # With step="epoch" the rate changes at the start of the epoch ⌈b⌉.
        per = 1 if self.step == "epoch" else self.steps_per_epoch
        self.boundary_steps = [math.ceil(x) if per == 1 else round(x * per) for x in b]

    def _lr(self, t: int) -> float:
        i = sum(t >= bs for bs in self.boundary_steps)
        return self.values[i]


class PerformanceSchedule(Schedule):
    """Performance scheduling (reduce on plateau).

    After ``patience`` consecutive epochs whose monitored metric did not improve on the best
    by more than ``min_delta``, η ← max(η·factor, min_lr) and the count restarts.

    Args:
        factor: λ in (0, 1) (default 0.5).
        patience: epochs without improvement before a reduction (default 5).
        min_lr: floor (default 0).
        mode: ``"min"`` for losses, ``"max"`` for accuracies (default ``"min"``).
        min_delta: smallest change that counts as an improvement (default 1e-4, as Keras'
            ``ReduceLROnPlateau``: a loss must fall below best − 1e-4).

    The rate changes only between epochs whatever ``step`` says.

    Example:
        >>> s = PerformanceSchedule(base_lr=0.1, steps_per_epoch=1, epochs=9, patience=1)
        >>> s.on_epoch_end(0, 1.0); s.on_epoch_end(1, 1.0); s.lr_at(2)
        0.05
    """

    name = "performance"

    def __init__(self, *, factor: float = 0.5, patience: int = 5, min_lr: float = 0.0,
                 mode: str = "min", min_delta: float = 1e-4, **base: Any):
        super().__init__(**base)
        self.factor = checks.check_field("schedule.factor", factor)
        self.patience = checks.check_field("schedule.patience", patience)
        self.min_lr = checks.check_field("schedule.min_lr", min_lr)
        if mode not in ("min", "max"):
            raise ConfigError("schedule.mode", mode, ["min", "max"])
        self.mode = mode
        self.min_delta = checks.check_field("schedule.min_delta", min_delta)
        self.lr = self.base_lr
        self.best: float | None = None
        self.wait = 0

    def _lr(self, t: int) -> float:
        return self.lr

    def on_epoch_end(self, epoch: int, metric: float | None) -> None:
        if metric is None:
            return
        # host sync: once per epoch, when the caller passes a tensor metric.
        value = float(metric.item()) if isinstance(metric, torch.Tensor) else float(metric)
        if math.isnan(value):
            improved = False
        elif self.best is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.lr, self.best, self.wait = float(state["lr"]), state["best"], int(state["wait"])


class OneCycleSchedule(Schedule):
    """1cycle (Smith 2018, as in Géron's ``OneCycleScheduler``).

    With T total steps, t1 = warmup_frac·T and t2 = (1 − anneal_frac)·T:
    η rises linearly from max_lr/start_div to max_lr over [0, t1], falls linearly back to
    max_lr/start_div over [t1, t2], then anneals linearly to max_lr/final_div at T (held
    after). Momentum mirrors it: max_momentum → min_momentum → max_momentum, then stays.

    Args (defaults in the signature):
        max_lr: peak rate (None: base_lr). start_div, final_div: divisors of max_lr at the
        start and the end (the chapter's ``OneCycleScheduler`` ends at max_lr/10000:
        ``final_div=10000``). warmup_frac, anneal_frac: shares of the steps (epochs with
        ``step="epoch"``; anneal 0 = no final anneal). max_momentum, min_momentum: the range.

    Example:
        >>> s = OneCycleSchedule(base_lr=0.1, steps_per_epoch=10, epochs=10)
        >>> round(s.lr_at(0), 6), round(s.lr_at(45), 6), s.momentum_at(45)
        (0.01, 0.1, 0.85)
    """

    name = "onecycle"

    def __init__(self, *, max_lr: float | None = None, start_div: float = 10.0,
                 final_div: float = 1000.0, warmup_frac: float = 0.45, anneal_frac: float = 0.1,
                 max_momentum: float = 0.95, min_momentum: float = 0.85, **base: Any):
        super().__init__(**base)
        peak = self.base_lr if max_lr is None else max_lr
        self.max_lr = checks.number("schedule.max_lr", peak, lambda v: v > 0, "a number > 0")
        self.start_div = checks.check_field("schedule.start_div", start_div)
        self.final_div = checks.check_field("schedule.final_div", final_div)
        self.warmup_frac = checks.check_field("schedule.warmup_frac", warmup_frac)
        self.anneal_frac = checks.check_field("schedule.anneal_frac", anneal_frac)
        if self.warmup_frac + self.anneal_frac >= 1:
            raise ConfigError("schedule.warmup_frac", warmup_frac,
                              f"a number < 1 − anneal_frac = {1 - self.anneal_frac:g}")
        self.max_momentum = checks.check_field("schedule.max_momentum", max_momentum)
        self.min_momentum = checks.check_field("schedule.min_momentum", min_momentum)
        if self.min_momentum > self.max_momentum:
            raise ConfigError("schedule.min_momentum", min_momentum,
                              f"a number <= max_momentum ({self.max_momentum:g})")
        total = self.units
        self.t1 = self.warmup_frac * total
        self.t2 = (1.0 - self.anneal_frac) * total

    @staticmethod
    def _interp(t: float, t0: float, t1: float, v0: float, v1: float) -> float:
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def _lr(self, step: int) -> float:
        start, peak, final = self.max_lr / self.start_div, self.max_lr, self.max_lr / self.final_div
        t = min(float(step), float(self.units))
        if t < self.t1:
            return self._interp(t, 0.0, self.t1, start, peak)
        if t < self.t2:
            return self._interp(t, self.t1, self.t2, peak, start)
        if self.t2 >= self.units:  # anneal_frac = 0: the cycle ends at max_lr/start_div
            return start
        return self._interp(t, self.t2, self.units, start, final)

    def _momentum(self, step: int) -> float | None:
        t = float(step)
        if t < self.t1:
            return self._interp(t, 0.0, self.t1, self.max_momentum, self.min_momentum)
        if t < self.t2:
            return self._interp(t, self.t1, self.t2, self.min_momentum, self.max_momentum)
        return self.max_momentum


_BASE_PARAMS = ("base_lr", "steps_per_epoch", "epochs")


def _params(cls: type[Schedule]) -> dict[str, Any]:
    """A schedule's own parameters and their defaults: its ``__init__`` signature is the one
    place they are written (the registry, the recipe docs and the CLI read them from here)."""
    own = {p.name: None if p.default is inspect.Parameter.empty else p.default
           for p in inspect.signature(cls.__init__).parameters.values()
           if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _BASE_PARAMS}
    return {**own, "step": "iteration"}     # every schedule takes Schedule's own `step`


SCHEDULES = Registry("schedule")
for _cls, _desc, _aliases in [
    (ConstantSchedule, "η(t) = η0", ("none",)),
    (PowerSchedule, "η(t) = η0 / (1 + t/s)^c", ()),
    (ExponentialSchedule, "η(t) = η0 · 0.1^(t/s)", ()),
    (PiecewiseSchedule, "constant rates between epoch boundaries", ("piecewise_constant",)),
    (PerformanceSchedule, "×factor after `patience` epochs without validation improvement",
     ("plateau",)),
    (OneCycleSchedule, "1cycle: LR up then down linearly, final anneal, momentum inverse",
     ("1cycle", "one_cycle")),
]:
    SCHEDULES.register(_cls.name, _cls, description=_desc, aliases=_aliases, params=_params(_cls),
                       cycles_momentum=_cls is OneCycleSchedule, per_epoch=_cls.steps_in_epochs)

_ALL_PARAMS = {p for _, e in SCHEDULES.items() for p in e.meta["params"]}


def make_schedule(name: str = "constant", *, base_lr: float, steps_per_epoch: int, epochs: int,
                  **params: Any) -> Schedule:
    """Build a registered schedule.

    Params set to None are treated as absent; params that belong to another schedule are
    ignored (a recipe's ``[schedule]`` table may carry several); unknown names are an error.

    Raises:
        ConfigError: ``schedule.name`` or ``schedule.<field>``.

    Example:
        >>> make_schedule("1cycle", base_lr=0.1, steps_per_epoch=10, epochs=5).name
        'onecycle'
    """
    entry = SCHEDULES.get(name, "schedule.name")
    own = entry.meta["params"]
    kwargs = {}
    for key, value in params.items():
        if key not in _ALL_PARAMS:
            raise ConfigError(f"schedule.{key}", value,
                              f"a parameter of {entry.name}: {', '.join(own) or 'none'}")
        if key in own and value is not None:
            kwargs[key] = value
    return entry.obj(base_lr=base_lr, steps_per_epoch=steps_per_epoch, epochs=epochs, **kwargs)


def apply_schedule(optimizer: torch.optim.Optimizer, schedule: Schedule, step: int) -> float:
    """Set every param group's lr (× its ``lr_scale``) and, when cycled, its momentum.

    Momentum goes to ``momentum`` for SGD groups that use it (>0) and to β1 of ``betas``
    for the Adam family. Returns the base lr for logging.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> apply_schedule(opt, ConstantSchedule(base_lr=0.1, steps_per_epoch=1, epochs=1), 0)
        0.1
    """
    lr = schedule.lr_at(step)
    momentum = schedule.momentum_at(step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
        if momentum is None:
            continue
        if "betas" in group:
            group["betas"] = (momentum, group["betas"][1])
        elif group.get("momentum", 0) > 0:
            group["momentum"] = momentum
    return lr
