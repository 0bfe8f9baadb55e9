"""The learning-rate range test ("LR finder") as a Trainer callback.

:class:`LRFinder` grows the learning rate exponentially from a tiny value to a huge one, one
step at a time, records the loss, and stops the run once the loss blows up. It is a callback,
so the test trains with the run's real step — the recipe's clipping (value, per-tensor norm,
global norm), l1/l2 penalties and max-norm — not with a simplified copy of it. Afterwards the
model's weights and buffers, the optimizer's state and the random-number state are put back.
:func:`find_lr` runs it on a fresh Trainer and suggests a maximum learning rate: the chapter's
advice is to train a bit below the rate where the loss turns up — about ten times lower.

Example:
    >>> result = find_lr(model, x, y, optimizer="nadam", batch_size=64)   # doctest: +SKIP
    >>> result.suggestion, result.rule                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.tasks import get_task, task_with_loss
from trainwell.train.callbacks import Callback
from trainwell.train.rng import get_rng_state, set_rng_state
from trainwell.train.trainer import Trainer

__all__ = ["LRFinder", "LRFindResult", "RULES", "find_lr", "suggest_lr"]

RULES = {
    "min/10": "one tenth of the learning rate at which the smoothed loss is lowest "
              "(the chapter's rule: train about 10 times below the rate where the loss turns up)",
    "steepest": "the learning rate where the smoothed loss falls fastest "
                "(steepest negative slope of loss against log learning rate, before the minimum)",
}

# Loss values are read back in chunks: one host sync per chunk, not per step.
_CHECK_EVERY = 10


@dataclass
class LRFindResult:
    """What the LR range test measured and what it suggests.

    Attributes:
        lrs: learning rate of each step taken (before the stop).
        losses: exponentially smoothed, bias-corrected loss at each step.
        raw_losses: the mini-batch loss at each step.
        suggestion: the suggested maximum learning rate.
        rule: the rule that gave ``suggestion``, as a sentence.
        rule_name: key of the rule in :data:`RULES`.
        min_loss_lr: learning rate at the lowest smoothed loss.
        steepest_lr: learning rate at the steepest descent of the smoothed loss (None if
            too few points).
        diverged: whether the test stopped because the loss exceeded ``diverge`` × best.
        note: a warning when the curve does not support a confident suggestion.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    rule: str
    rule_name: str
    min_loss_lr: float
    steepest_lr: float | None
    diverged: bool
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def sentence(self) -> str:
        """One line for people: the suggestion and why."""
        text = f"suggested max learning rate: {self.suggestion:.3g} — {self.rule}"
        return text + (f" ({self.note})" if self.note else "")

    def to_json(self, path: str | Path) -> Path:
        from trainwell.atomic import atomic_write

        return atomic_write(Path(path), json.dumps(asdict(self), indent=2))


def _smooth(raw: Sequence[float], beta: float) -> list[float]:
    """Exponential moving average with bias correction: s_t = a_t / (1 − βᵗ⁺¹)."""
    out, avg = [], 0.0
    for i, v in enumerate(raw):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)) if beta > 0 else v)
    return out


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], rule: str = "min/10"
               ) -> tuple[float, float, float | None, str]:
    """Apply a suggestion rule to a smoothed loss curve.

    Returns:
        (suggestion, lr at the minimum loss, lr at the steepest descent or None, note)
    """
    if rule not in RULES:
        raise ConfigError("lr_find.rule", rule, list(RULES))
    if not lrs:
        raise ValueError("the LR range test recorded no step")
    i_min = min(range(len(losses)), key=losses.__getitem__)
    min_lr = lrs[i_min]
    steepest = None
    # Slopes over a window of ~5% of the points, skipping the first ones: step-to-step
    # differences of a noisy curve would pick noise, not the descent.
    w = max(1, len(lrs) // 20)
    first = min(10, len(lrs) // 10)
    if i_min - w > first:
        logs = [math.log(lr) for lr in lrs]
        slopes = {i: (losses[i + w] - losses[i]) / (logs[i + w] - logs[i])
                  for i in range(first, i_min - w + 1)}
        i_best = min(slopes, key=slopes.__getitem__)
        steepest = math.exp((logs[i_best] + logs[i_best + w]) / 2)
    note = ""
    if i_min == 0:
        note = "the loss never went down: lower start_lr or check the data and the model"
    elif i_min == len(losses) - 1:
        note = "the loss was still going down at end_lr: raise end_lr or steps"
    if rule == "steepest":
        if steepest is None:
            return min_lr / 10, min_lr, None, (note or "too few points before the minimum; "
                                               "fell back to min/10")
        return steepest, min_lr, steepest, note
    return min_lr / 10, min_lr, steepest, note


def _make_optimizer(model: nn.Module, optimizer: str | torch.optim.Optimizer,
                    params: dict[str, Any] | None, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    from trainwell.optim import make_optimizer

    accepted = inspect.signature(make_optimizer).parameters
    kwargs = {k: v for k, v in (params or {}).items() if k in accepted and k not in ("lr", "name")}
    return make_optimizer(model.parameters(), optimizer, lr=lr, **kwargs)


def _check_settings(start_lr: float, end_lr: float, steps: int, smooth: float, diverge: float,
                    batch_size: int) -> None:
    if not (isinstance(start_lr, (int, float)) and start_lr > 0):
        raise ConfigError("lr_find.start_lr", start_lr, "a number > 0")
    if not (isinstance(end_lr, (int, float)) and end_lr > start_lr):
        raise ConfigError("lr_find.end_lr", end_lr, f"a number > start_lr ({start_lr})")
    if not (isinstance(steps, int) and steps >= 2):
        raise ConfigError("lr_find.steps", steps, "an integer ≥ 2")
    if not (0 <= smooth < 1):
        raise ConfigError("lr_find.smooth", smooth, "a number with 0 ≤ smooth < 1")
    if not diverge > 1:
        raise ConfigError("lr_find.diverge", diverge, "a number > 1")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ConfigError("lr_find.batch_size", batch_size, "an integer ≥ 1")


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


class LRFinder(Callback):
    """The LR range test as a callback: an exponential lr ramp, the loss of every step.

    At step t (0 … steps−1, counted from the start of the fit) every param group's lr is
    ``start_lr · (end_lr/start_lr)^(t/(steps−1))`` (× its ``lr_scale``); the loss is smoothed
    as ``a_t = β·a_{t−1} + (1−β)·loss_t``, ``s_t = a_t/(1−β^{t+1})``; the run stops after
    ``steps`` steps, or as soon as ``s_t > diverge · min(s)`` or a loss is not finite. The
    losses are read back every 10 steps (one host sync per 10 steps). When the fit ends the
    model, the optimizer and the random-number state are restored (``restore=True``), so
    give it a Trainer of its own: :func:`find_lr` does. :meth:`result` gives the suggestion.

    Args:
        start_lr, end_lr: range of the test (defaults 1e-7, 10).
        steps: number of steps (default 200): fit for at least that many.
        smooth: β of the smoothing (default 0.98).
        diverge: stop when the smoothed loss exceeds this multiple of the best (default 4).
        restore: put the weights, optimizer state and RNG state back at the end (default True).

    Example:
        >>> finder = LRFinder(start_lr=1e-5, steps=50)                    # doctest: +SKIP
        >>> Trainer(model, callbacks=[finder]).fit(x, y, epochs=50)        # doctest: +SKIP
        >>> finder.result().suggestion                                     # doctest: +SKIP
    """

    order = -50  # the lr is set before any other callback sees the batch

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200,
                 smooth: float = 0.98, diverge: float = 4.0, restore: bool = True):
        _check_settings(start_lr, end_lr, steps, smooth, diverge, 1)
        self.start_lr, self.end_lr, self.steps = float(start_lr), float(end_lr), steps
        self.smooth, self.diverge, self.restore = smooth, diverge, restore
        ratio = end_lr / start_lr
        self.schedule = [start_lr * ratio ** (t / (steps - 1)) for t in range(steps)]
        self.lrs: list[float] = []
        self.raw_losses: list[float] = []
        self.losses: list[float] = []
        self.diverged = False

    def on_fit_start(self, t) -> None:
        self._first = t.step
        self._raw = torch.empty(self.steps, device=t.device)
        self._avg, self._best = 0.0, math.inf
        if self.restore:
            self._saved = ({k: v.detach().clone()
                            for k, v in _unwrap(t.model).state_dict().items()},
                           copy.deepcopy(t.optimizer.state_dict()), get_rng_state(),
                           t.model.training)

    def on_batch_start(self, t, step: int) -> None:
        lr = self.schedule[step - self._first]
        for g in t.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)

    def on_batch_end(self, t, step: int) -> None:
        i = step - self._first
        self._raw[i] = t.last_loss
        if (i + 1) % _CHECK_EVERY and i != self.steps - 1:
            return
        if self._read(i) or i + 1 >= self.steps:
            t.stop_training = True

    def _read(self, last: int) -> bool:
        """Smooth the losses up to step ``last``; whether the test must stop."""
        start = len(self.raw_losses)
        chunk = self._raw[start:last + 1].tolist()  # host sync: once per chunk of steps
        beta = self.smooth
        for i, v in enumerate(chunk, start=start):
            if not math.isfinite(v):
                self.diverged = True
                return True
            self._avg = beta * self._avg + (1 - beta) * v
            s = self._avg / (1 - beta ** (i + 1)) if beta > 0 else v
            self.lrs.append(self.schedule[i])
            self.raw_losses.append(v)
            self.losses.append(s)
            self._best = min(self._best, s)
            if i > 0 and s > self.diverge * self._best:
                self.diverged = True
                return True
        return False

    def on_fit_end(self, t) -> None:
        if self.restore and getattr(self, "_saved", None) is not None:
            model_state, opt_state, rng, training = self._saved
            _unwrap(t.model).load_state_dict(model_state)
            t.optimizer.load_state_dict(opt_state)
            t.optimizer.zero_grad(set_to_none=True)
            set_rng_state(rng)
            t.model.train(training)
            self._saved = None

    def on_exception(self, t, exc: BaseException) -> None:
        self.on_fit_end(t)

    def result(self, rule: str = "min/10") -> LRFindResult:
        """The measured curve and the suggestion of ``rule`` (see :data:`RULES`)."""
        if not self.lrs:
            raise ConfigError("lr_find.start_lr", self.start_lr,
                              "a rate at which the first loss is finite (the loss was NaN/Inf "
                              "at once: check the data and the model)")
        suggestion, min_lr, steepest, note = suggest_lr(self.lrs, self.losses, rule)
        return LRFindResult(lrs=list(self.lrs), losses=list(self.losses),
                            raw_losses=list(self.raw_losses), suggestion=suggestion,
                            rule=RULES[rule], rule_name=rule, min_loss_lr=min_lr,
                            steepest_lr=steepest, diverged=self.diverged, note=note,
                            settings=dict(start_lr=self.start_lr, end_lr=self.end_lr,
                                          steps=self.steps, smooth=self.smooth,
                                          diverge=self.diverge))


def find_lr(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
            optimizer: str | torch.optim.Optimizer = "sgd",
            optimizer_params: dict[str, Any] | None = None,
            task: str = "multiclass", loss: str | Callable | None = None,
            start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200,
            batch_size: int = 32, smooth: float = 0.98, diverge: float = 4.0,
            rule: str = "min/10", seed: int = 0, clip_value: float = 0.0,
            clip_norm: float = 0.0, clip_global_norm: float = 0.0, l1: float = 0.0,
            l2: float = 0.0, max_norm: float = 0.0) -> LRFindResult:
    """Run the LR range test (:class:`LRFinder` on a fresh Trainer) and suggest a max lr.

    The test trains with the same step as training — clipping, penalties and max-norm
    included — on shuffled full batches (the last partial batch of each pass is left out: its
    loss is noisier). The default rule (``"min/10"``) suggests one tenth of the rate at the
    lowest smoothed loss; ``"steepest"`` suggests the rate of the steepest descent. Afterwards
    the model's parameters and buffers, the optimizer state (including its learning rate) and
    the random-number state (torch, NumPy, Python) are exactly as before.

    Args:
        model: any ``nn.Module`` that maps a batch of ``x`` to outputs (logits).
        x, y: training tensors, on the model's device.
        optimizer: a registered optimizer name (default ``"sgd"``) or a torch optimizer over
            the model's parameters.
        optimizer_params: keyword arguments of ``make_optimizer`` (momentum, beta_1, …).
        task: the task that gives the loss when ``loss`` is not a callable (default multiclass).
        loss: a loss name for the task, or a callable ``loss(outputs, y)``.
        start_lr, end_lr: range of the test (defaults 1e-7, 10).
        steps: number of steps (default 200); batches cycle through shuffled data.
        batch_size: mini-batch size (default 32 — use the size you will train with).
        smooth: β of the smoothing (default 0.98).
        diverge: stop when the smoothed loss exceeds this multiple of the best (default 4).
        rule: ``"min/10"`` (default) or ``"steepest"``, see :data:`RULES`.
        seed: seed of the batch order (default 0).
        clip_value, clip_norm, clip_global_norm: gradient clipping as training does (0 = off).
        l1, l2: kernel penalties added to the loss as training does (0 = off).
        max_norm: max-norm after every step as training does (0 = off).

    Example:
        >>> model = nn.Linear(3, 1)
        >>> x, y = torch.randn(256, 3), torch.randn(256, 1)
        >>> r = find_lr(model, x, y, loss=nn.functional.mse_loss, steps=50, start_lr=1e-4)
        >>> r.suggestion > 0
        True
    """
    _check_settings(start_lr, end_lr, steps, smooth, diverge, batch_size)
    if rule not in RULES:
        raise ConfigError("lr_find.rule", rule, list(RULES))
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError("lr_find.data", f"{len(x)} inputs, {len(y)} targets",
                          "the same non-zero number of inputs and targets")
    the_task = task_with_loss(loss) if callable(loss) else get_task(task, loss)
    opt = _make_optimizer(model, optimizer, optimizer_params, start_lr)
    bs = min(batch_size, len(x))
    per_pass = len(x) // bs
    finder = LRFinder(start_lr, end_lr, steps, smooth, diverge)
    ref = next(model.parameters(), None)
    rng = get_rng_state()  # the Trainer seeds the RNGs: the caller's state comes back after
    try:
        trainer = Trainer(model, task=the_task, optimizer=opt, callbacks=[finder],
                          device=ref.device if ref is not None else x.device, seed=seed,
                          clip_value=clip_value, clip_norm=clip_norm,
                          clip_global_norm=clip_global_norm, l1=l1, l2=l2, max_norm=max_norm)
        trainer.fit(x, y, epochs=-(-steps // per_pass), batch_size=bs, drop_last=True, verbose=0)
    finally:
        set_rng_state(rng)
    result = finder.result(rule)
    result.settings = dict(start_lr=start_lr, end_lr=end_lr, steps=steps, batch_size=bs,
                           smooth=smooth, diverge=diverge, seed=seed)
    return result
