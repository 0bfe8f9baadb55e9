"""The training step: ONE update body that every loop calls, however it is run.

:class:`TrainStep` is the one place where trainwell changes weights. Fit, the LR finder,
greedy pretraining and two-phase fine-tuning all train through a Trainer, and the Trainer calls
this object once per batch. The update, in order (:meth:`TrainStep._update`, one screen):

1. forward and loss — the task's loss plus ``l1·Σ|w| + l2·Σw²`` on the kernels;
2. backward — the gradients land in ``p.grad``;
3. the ``on_after_backward`` event (gradients ready): probes and NaN checks read them; a
   callback cancels this update by raising :class:`CancelStep`;
4. clipping — value, per-tensor norm, global norm (:func:`trainwell.optim.clip_gradients`);
5. the optimizer's own ``step`` (the ``torch.optim`` update rule);
6. max-norm on the hidden layers;

then (7) the learning rate (and cycled momentum) of the next step is set from the schedule.

``compile=True`` changes only *how* steps 1–6 run: the same body is given to
``torch.compile`` with a functional backward (``torch.func.grad_and_value``: forward and
backward become one inference graph, no autograd engine at run time) and the optimizer's step
without its Python wrappers, so the whole update is one graph with no host sync. On the
chapter's small dense networks that removes most of the per-operation overhead. The lr and
the momentum/β1 a schedule changes every step (1cycle) are inputs of the graph, not constants
(:mod:`trainwell.train.graph_hypers`), so every optimizer and schedule runs compiled; a step
that a callback looks inside (see :func:`needs_eager_step`), or one after a hyperparameter
that is a constant of the graph changed, runs op by op instead of recompiling. Dropout masks
come from the compiler's random stream, so a compiled run with dropout is not bit-identical to
an eager one (without dropout it equals it to float rounding). Any failure to compile warns once
and the step runs op by op from then on — results stay the same, only slower.

Mixed precision and many processes live in the same body, each in one place:

- precision (:class:`~trainwell.train.precision.Precision`, bf16/fp16): the forward pass and
  the loss run under ``torch.autocast``; with fp16 the loss is scaled before ``backward`` and
  the gradients unscaled right after it (so the after-backward event and clipping see true
  values), and the optimizer step is the scaler's (skipped when the gradients overflowed) —
  all in :meth:`TrainStep._autograd_backward` and :meth:`TrainStep._optimizer_step`;
- DDP: ``forward`` is the ``DistributedDataParallel`` wrapper, so ``backward`` averages the
  gradients over the workers before the event, clipping and the update see them;
  ``loss_weight`` weights this worker's loss by its share of a batch that does not split
  evenly. Gradient accumulation would wrap non-final micro-batches in ``forward.no_sync()``.

Both run op by op (the compiled graph is one fp32 process).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.SELU(), nn.Linear(8, 3))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> step = make_train_step(model, nn.functional.cross_entropy, opt)   # eager
    >>> out = step(torch.randn(16, 4), torch.randint(0, 3, (16,)))
    >>> out.logits.shape, out.loss.dim()
    (torch.Size([16, 3]), 0)
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch import nn

from trainwell.errors import TrainwellRuntimeWarning
from trainwell.nn import apply_max_norm
from trainwell.optim import apply_schedule, clip_gradients, kernel_parameters, kernel_penalty
from trainwell.train.callbacks import Callback, CancelStep
from trainwell.train.graph_hypers import GraphHypers

__all__ = ["CancelStep", "StepOutput", "TrainStep", "make_train_step", "needs_eager_step"]

# Schedules whose lr does not change from step to step: no per-step update.
_STEPLESS = ("constant", "performance")


class StepOutput(NamedTuple):
    """What one training step returns (all detached, on the device; no host sync)."""

    logits: torch.Tensor
    loss: torch.Tensor  # the task loss (without the penalty)
    penalty: torch.Tensor | None  # l1·Σ|w| + l2·Σw², when a penalty is set


class TrainStep:
    """One optimizer step on a batch: ``step(xb, yb, step_index) -> StepOutput``.

    See the module docstring for the update, in order. ``eager`` runs it op by op;
    ``__call__`` runs the compiled graph when ``compile=True`` and the step allows it, else
    ``eager``; then it applies the schedule for the next step.

    Attributes:
        after_backward: ``None`` or ``fn(step_index, loss)`` called when the gradients are
            ready (the Trainer dispatches ``on_after_backward`` from it); may raise
            :class:`CancelStep`.
        needs_eager: ``None`` or ``fn(step_index) -> bool``: run this step op by op.
        schedule: ``None`` or a :class:`~trainwell.optim.Schedule`; after every update the
            optimizer gets ``schedule.lr_at(step_index + 1)`` (× each group's ``lr_scale``).
        compiled: True while the compiled path is in use (False after a fallback).
        compiled_steps / eager_steps: how many steps took each path.
        cancelled_steps: updates skipped through :class:`CancelStep`.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                 torch.Tensor], optimizer: torch.optim.Optimizer, *, clip_value: float = 0.0,
                 clip_norm: float = 0.0, clip_global_norm: float = 0.0, l1: float = 0.0,
                 l2: float = 0.0, max_norm: float = 0.0, compile: bool = False,
                 compile_options: dict[str, Any] | None = None, schedule: Any = None,
                 precision: Any = None, forward: nn.Module | None = None):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        # What the batch goes through: the DistributedDataParallel wrapper under torchrun
        # (its backward averages the gradients over the workers), else the model itself.
        self.forward = model if forward is None else forward
        self.precision = precision  # None/fp32, or bf16/fp16 autocast with a gradient scaler
        self._amp = precision is not None and precision.enabled
        self.loss_weight = 1.0  # DDP: this worker's share of a batch that does not split evenly
        self.clip = {"clip_value": float(clip_value), "clip_norm": float(clip_norm),
                     "clip_global_norm": float(clip_global_norm)}
        self._clipping = any(v > 0 for v in self.clip.values())
        self.l1, self.l2, self.max_norm = float(l1), float(l2), float(max_norm)
        self._penalized = self.l1 > 0 or self.l2 > 0
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self.params = [p for _, p in named]
        # Every kernel is penalized, frozen ones included (Keras: a frozen layer's
        # regularization loss still counts); the gradient reaches the trainable ones only.
        self._kernels = kernel_parameters(model) if self._penalized else []
        index = {id(p): i for i, p in enumerate(self.params)}
        self._kernel_idx = [index.get(id(w)) for w in self._kernels]
        self.after_backward: Callable[[int, torch.Tensor], None] | None = None
        self.needs_eager: Callable[[int], bool] | None = None
        self.schedule = None
        self.per_step_lr = False
        self.set_schedule(schedule)
        self.compiled = bool(compile) and not self._amp and self.forward is model
        self.compile_options = dict(compile_options or {})
        self._cpp_wrapper = "cpp_wrapper" not in self.compile_options.get("options", {})
        self.compiled_steps = 0
        self.eager_steps = 0
        self.cancelled_steps = 0
        self._graph: Callable | None = None
        self._hypers = GraphHypers(optimizer, self.params[0].device if self.params else
                                   torch.device("cpu"))
        self._primed = False
        self.skip_guards = True  # after a guarded call of the same signature (_call_graph)
        self.cache_key: str | None = None  # compile_cache.graph_key of this step, when known
        self._guarded: set[tuple] = set()
        self.compile_seconds = 0.0  # wall time of the first compiled call (tracing + codegen)
        self.compile_cache_hit: bool | None = None  # whether inductor's disk cache had the graph
        if self.compiled:
            self._compile()

    def compile_info(self) -> dict[str, Any]:
        """What compiling did: ``ran`` (a compiled step ran), ``seconds`` (the first compiled
        call: tracing plus code generation, or loading from the disk cache), ``cache_hit``,
        and how many steps ran compiled and eagerly."""
        return {"ran": self.compiled_steps > 0, "seconds": round(self.compile_seconds, 3),
                "cache_hit": self.compile_cache_hit, "compiled_steps": self.compiled_steps,
                "eager_steps": self.eager_steps}

    def set_schedule(self, schedule: Any) -> None:
        """Use ``schedule`` for the lr of the steps that follow (``None``: leave the lr alone)."""
        self.schedule = schedule
        self.per_step_lr = schedule is not None and not (
            getattr(schedule, "name", "") in _STEPLESS and schedule.momentum_at(0) is None)

    # ------------------------------------------------------------------ the update
    def _update(self, xb: torch.Tensor, yb: torch.Tensor, step: int | None, *,
                backward: Callable, optimizer_step: Callable, events: bool = True
                ) -> tuple[StepOutput, bool]:
        """Steps 1–6 of the module docstring; returns (output, whether the update happened).

        ``backward`` and ``optimizer_step`` say how it runs (autograd and ``optimizer.step``
        op by op, or ``torch.func`` and the unwrapped step inside one compiled graph).
        """
        logits, loss, penalty = backward(xb, yb)  # forward, loss + penalty, backward → p.grad
        if events and self.after_backward is not None:
            try:  # gradients ready: probes, NaN checks
                self.after_backward(step, loss)
            except CancelStep:
                return StepOutput(logits, loss, penalty), False
        if self._clipping:
            clip_gradients(self.params, **self.clip)
        optimizer_step()  # fp16: the scaler's step, skipped when the gradients overflowed
        if self.max_norm:  # each hidden unit's incoming weights: ‖w‖₂ ≤ r
            apply_max_norm(self.model, self.max_norm)
        return StepOutput(logits, loss, penalty), True

    def _autograd_backward(self, xb: torch.Tensor, yb: torch.Tensor):
        # (DDP gradient accumulation would wrap non-final micro-batches in forward.no_sync())
        self.optimizer.zero_grad(set_to_none=True)
        if self._amp:
            with self.precision.autocast():  # bf16/fp16: the forward pass and the loss
                logits = self.forward(xb)
                loss = self.loss_fn(logits, yb)
        else:
            logits = self.forward(xb)
            loss = self.loss_fn(logits, yb)
        objective = loss if self.loss_weight == 1.0 else loss * self.loss_weight
        penalty = None
        if self._penalized:
            penalty = kernel_penalty(self._kernels, l1=self.l1, l2=self.l2)
            objective = objective + penalty
            penalty = penalty.detach()
        if self._amp:
            self.precision.scale(objective).backward()  # fp16: × the scaler's factor
            self.precision.unscale(self.optimizer)  # events and clipping see true gradients
        else:
            objective.backward()
        return logits.detach(), loss.detach(), penalty

    def eager(self, xb: torch.Tensor, yb: torch.Tensor, step: int | None = None) -> StepOutput:
        """Steps 1–6 op by op, with the after-backward event (the reference for compiled)."""
        return self._eager(xb, yb, step)[0]

    def _eager(self, xb, yb, step):
        self.eager_steps += 1
        out, applied = self._update(xb, yb, step, backward=self._autograd_backward,
                                    optimizer_step=self._optimizer_step)
        self.cancelled_steps += not applied
        return out, applied

    def _optimizer_step(self) -> None:
        if self._amp:
            self.precision.step(self.optimizer)  # fp16: scaler.step(optimizer); update()
        else:
            self.optimizer.step()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, step: int | None = None
                 ) -> StepOutput:
        out, applied = None, True
        if self._graph is not None and not (self.needs_eager is not None
                                            and self.needs_eager(step)):
            out = self._run_graph(xb, yb)
        if out is None:
            out, applied = self._eager(xb, yb, step)
        if applied and self.per_step_lr and step is not None:  # η (and momentum) for step+1
            apply_schedule(self.optimizer, self.schedule, step + 1)
        return out

    # ------------------------------------------------------------------ compiled
    def _functional_backward(self, xb: torch.Tensor, yb: torch.Tensor):
        """Forward + loss + backward with ``torch.func`` (traceable), gradients → ``p.grad``."""
        from torch.func import functional_call, grad_and_value

        model, names, kernels, kernel_idx = self.model, self._names, self._kernels, \
            self._kernel_idx
        buffer_names = [n for n, _ in model.named_buffers()]

        def objective(weights, buffers):
            # Buffers are explicit inputs: batch norm updates its running statistics in place.
            tensors = dict(zip(names, weights, strict=True))
            tensors.update(zip(buffer_names, buffers, strict=True))
            logits = functional_call(model, tensors, (xb,))
            loss = self.loss_fn(logits, yb)
            if not self._penalized:
                return loss, (logits, loss, loss)
            penalty = kernel_penalty([w if i is None else weights[i]
                                      for w, i in zip(kernels, kernel_idx, strict=True)],
                                     l1=self.l1, l2=self.l2)
            return loss + penalty, (logits, loss, penalty)

        buffers = tuple(b for _, b in model.named_buffers())
        grads, (_, (logits, loss, penalty)) = grad_and_value(objective, has_aux=True)(
            tuple(self.params), buffers)
        torch._foreach_copy_([p.grad for p in self.params], list(grads))
        return logits, loss, penalty

    def _compile(self) -> None:
        # Optimizer.step without its wrappers: they insert graph breaks (to force no_grad,
        # which the whole graph already runs under) and run user step hooks.
        raw_step, optimizer = inspect.unwrap(type(self.optimizer).step), self.optimizer

        def body(xb, yb):  # the same update, run as one graph
            return self._update(xb, yb, None, backward=self._functional_backward,
                                optimizer_step=lambda: raw_step(optimizer), events=False)

        from trainwell.train.compile_cache import enable_compile_cache
        enable_compile_cache()  # a second run of the same network shape reuses the kernels
        options = dict(self.compile_options)
        if self._cpp_wrapper:
            # The C++ wrapper calls the graph's kernels without Python in between: ~10 % less
            # time per step on the chapter's dense nets (measured on a 2-core CPU).
            options["options"] = {"cpp_wrapper": True, **options.get("options", {})}
        try:
            self._graph = torch.compile(body, **options)
        except Exception as e:  # torch.compile itself unavailable (platform, Python version)
            self._fallback(e)

    def _fallback(self, exc: BaseException) -> None:
        warnings.warn(f"torch.compile of the training step failed ({type(exc).__name__}: "
                      f"{str(exc)[:300]}); training in eager mode", TrainwellRuntimeWarning,
                      stacklevel=4)
        self.compiled = False
        self._graph = None

    def reguard(self) -> None:
        """Evaluate the compiled graph's guards again on the next call of every input
        signature (the Trainer calls it at the start of each epoch)."""
        self._guarded.clear()

    def _call_graph(self, xb: torch.Tensor, yb: torch.Tensor):
        """Call the graph; skip its guards when these inputs cannot have changed them.

        The compiler checks ~100 guards before every call (about a tenth of a model-A step on
        a CPU). What they check is either fixed for this step object's life (the parameters,
        the network, the optimizer's state) or in ``signature``: the batch's shapes and
        dtypes, train/eval mode, and the hyperparameters the compiler holds as numbers (the
        others are constants of the graph, compared by :class:`GraphHypers` before every
        call). The first call of each signature (after :meth:`reguard`) runs with guards.
        """
        signature = (xb.shape, xb.dtype, yb.shape, yb.dtype, self.model.training,
                     self._hypers.dynamo_values())
        if self.skip_guards and signature in self._guarded and _stance_setter() is not None:
            set_stance, skip = _stance_setter()
            prior = set_stance(skip)
            try:
                return self._graph(xb, yb)
            finally:
                set_stance(prior)
        out = self._graph(xb, yb)
        self._guarded.add(signature)
        return out

    def _run_graph(self, xb: torch.Tensor, yb: torch.Tensor) -> StepOutput | None:
        """The update as one compiled graph; None when this step must run op by op."""
        if not self._primed:  # the first step creates the optimizer state eagerly
            self._primed = True
            return None
        saved = self._hypers.swap_in()  # lr, betas: tensor inputs of the graph
        if saved is None:  # a constant of the graph changed: this step runs op by op
            return None
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        first = self.compiled_steps == 0
        if first:
            from trainwell.train.compile_cache import cache_counters
            hits, misses = cache_counters()
            started = time.perf_counter()
        try:
            with torch.no_grad():
                (logits, loss, penalty), _ = self._call_graph(xb, yb)
        except Exception as e:
            self._hypers.swap_out(saved)
            if self._cpp_wrapper and self.compiled_steps == 0:  # retry with the Python wrapper
                self._cpp_wrapper = False
                self._compile()
                return self._run_graph(xb, yb) if self._graph is not None else None
            self._fallback(e)  # any compiler failure: this and later steps run eagerly
            return None
        self._hypers.swap_out(saved)
        if first:  # the first call traces and builds the graph (or loads it from the cache)
            self.compile_seconds = time.perf_counter() - started
            new_hits, new_misses = cache_counters()
            self.compile_cache_hit = new_hits > hits and new_misses == misses
            if self.cache_key is not None:  # "auto" compiles this step sooner next time
                from trainwell.train.compile_cache import remember_graph
                remember_graph(self.cache_key)
        self.compiled_steps += 1
        return StepOutput(logits, loss, penalty if self._penalized else None)


@functools.cache
def _stance_setter() -> tuple[Callable, Any] | None:
    """(set, the skip-guards stance): ``torch.compiler.set_stance(skip_guard_eval_unsafe=True)``
    costs more than the guards it skips (~150 µs a call), so the stance object is set directly;
    None (guards on every call) where this torch has no such object."""
    try:
        from torch._dynamo.eval_frame import DynamoStance, _set_stance
        return _set_stance, DynamoStance(skip_guard_eval_unsafe=True)
    except ImportError:
        return None


def make_train_step(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                    torch.Tensor], optimizer: torch.optim.Optimizer, *, clip_value: float = 0.0,
                    clip_norm: float = 0.0, clip_global_norm: float = 0.0, l1: float = 0.0,
                    l2: float = 0.0, max_norm: float = 0.0, compile: bool = False,
                    compile_options: dict[str, Any] | None = None,
                    schedule: Any = None) -> TrainStep:
    """Build the training step ``step(xb, yb[, step_index]) -> StepOutput(logits, loss, penalty)``.

    Args:
        model: the network (its ``requires_grad`` parameters are trained).
        loss_fn: ``loss_fn(logits, targets) -> scalar``.
        optimizer: a ``torch.optim`` optimizer over the model's parameters; its lr may change
            between steps (a schedule), the compiled step follows it.
        clip_value, clip_norm, clip_global_norm: gradient clipping thresholds (0 = off).
        l1, l2: kernel penalties l1·Σ|w| + l2·Σw² added to the loss (0 = off).
        max_norm: r > 0 rescales each hidden unit's incoming weights to ‖w‖₂ ≤ r after
            every step (0 = off).
        compile: capture the whole step with ``torch.compile`` (default False). The first
            call compiles (seconds); falls back to eager with one warning on any failure.
        compile_options: extra keyword arguments for ``torch.compile`` (e.g. ``mode``); by
            default inductor's C++ wrapper is on (``options={"cpp_wrapper": True}``), and
            off again if it fails to build.
        schedule: a :class:`~trainwell.optim.Schedule` setting the lr of step ``t + 1`` after
            step ``t`` (when the step index is given); default None.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> step = make_train_step(model, nn.functional.mse_loss,
        ...                        torch.optim.SGD(model.parameters(), lr=0.1), clip_norm=1.0)
        >>> step(torch.ones(4, 3), torch.zeros(4, 2)).loss.shape
        torch.Size([])
    """
    return TrainStep(model, loss_fn, optimizer, clip_value=clip_value, clip_norm=clip_norm,
                     clip_global_norm=clip_global_norm, l1=l1, l2=l2, max_norm=max_norm,
                     compile=compile, compile_options=compile_options, schedule=schedule)


def needs_eager_step(callbacks: Iterable[Any], step: int) -> bool:
    """Whether step ``step`` must run op by op because a callback looks inside it.

    A callback says so with its ``needs_eager_step`` attribute: ``True``, ``False``, or a
    method ``needs_eager_step(step) -> bool`` for one that looks inside some steps only
    (``NanGuard`` every ``check_every`` steps, ``GradientProbe`` every ``every`` steps). Left
    at ``None`` (the default), a callback that handles ``on_after_backward`` needs every step
    eager. The older method name ``needs_backward_hook(step)`` is honoured too.
    """
    for cb in callbacks:
        flag = getattr(cb, "needs_eager_step", None)
        if flag is None:
            flag = getattr(cb, "needs_backward_hook", None)
        if flag is None:
            flag = _handles_after_backward(cb)
        if callable(flag):
            flag = flag(step)
        if flag:
            return True
    return False


def _handles_after_backward(cb: Any) -> bool:
    if isinstance(cb, Callback):
        return type(cb).on_after_backward is not Callback.on_after_backward
    return callable(getattr(cb, "on_after_backward", None))
