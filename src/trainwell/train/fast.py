"""The fast training step: forward, loss, backward, clipping, optimizer update in ONE graph.

On small networks (the chapter's dense models at batch 32) a PyTorch step spends more time
in per-operation overhead — Python, the autograd engine, ``Optimizer.step`` bookkeeping —
than in the matrix products. :func:`make_train_step` builds a step that does exactly what the
eager step does, and with ``compile=True`` it captures the whole step with ``torch.compile``:

1. ``torch.func.grad_and_value`` of ``loss(model(x), y) + l1·Σ|w| + l2·Σw²`` (no autograd
   engine at run time: forward and backward are one inference graph, elementwise ops fused
   into the matrix products' neighbours);
2. the gradients are written into ``p.grad`` (so they are where the eager step leaves them);
3. :func:`trainwell.optim.clip_gradients`, then the optimizer's *own* ``step`` (the
   ``torch.optim`` update rule, traced, not rewritten), then max-norm;

all under one graph with no host sync. Dropout works in the graph with the same
distribution, but its masks come from the compiler's random stream, so a compiled run with
dropout is not bit-identical to an eager one (without dropout it equals it to float rounding). The learning rate enters as a 0-dim tensor for the
optimizers that accept one (SGD family, NAdam, RMSProp, AdaGrad, AdaMax), so a schedule that
changes it every step does not recompile; for Adam/AdamW a changed lr, and for every optimizer
a changed momentum or β (1cycle), runs that step eagerly instead of recompiling. Any failure to compile warns once and the step runs eagerly from then
on — results stay the same, only slower.

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

import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch import nn

from trainwell.errors import TrainwellRuntimeWarning

__all__ = ["StepOutput", "TrainStep", "make_train_step", "needs_eager_step"]

# torch.optim classes whose foreach update rejects a tensor lr unless capturable.
_FLOAT_LR_ONLY: tuple[type, ...] = (torch.optim.Adam,)


class StepOutput(NamedTuple):
    """What one training step returns (all detached, on the device; no host sync)."""

    logits: torch.Tensor
    loss: torch.Tensor  # the task loss (without the penalty)
    penalty: torch.Tensor | None  # l1·Σ|w| + l2·Σw², when a penalty is set


class TrainStep:
    """One optimizer step on a batch: ``step(xb, yb) -> StepOutput``.

    The update is, in order: zero the gradients; logits = model(xb);
    J = loss_fn(logits, yb) + l1·Σ|w| + l2·Σw² (kernels only); g = ∇J; clip g (value, per-tensor
    norm, global norm); ``optimizer.step()``; max-norm on the hidden layers. ``eager`` runs it
    op by op; ``__call__`` runs the compiled graph when ``compile=True`` and it is usable,
    else ``eager``.

    Attributes:
        compiled: True while the compiled path is in use (False after a fallback).
        compiled_steps / eager_steps: how many steps took each path.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                 torch.Tensor], optimizer: torch.optim.Optimizer, *, clip_value: float = 0.0,
                 clip_norm: float = 0.0, clip_global_norm: float = 0.0, l1: float = 0.0,
                 l2: float = 0.0, max_norm: float = 0.0, compile: bool = False,
                 compile_options: dict[str, Any] | None = None):
        from trainwell.optim import kernel_parameters

        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.clip = {"clip_value": float(clip_value), "clip_norm": float(clip_norm),
                     "clip_global_norm": float(clip_global_norm)}
        self._clipping = any(v > 0 for v in self.clip.values())
        self.l1, self.l2, self.max_norm = float(l1), float(l2), float(max_norm)
        self._penalized = self.l1 > 0 or self.l2 > 0
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self.params = [p for _, p in named]
        kernel_ids = {id(w) for w in kernel_parameters(model)} if self._penalized else set()
        self._kernel_idx = [i for i, p in enumerate(self.params) if id(p) in kernel_ids]
        self.compiled = bool(compile)
        self.compile_options = dict(compile_options or {})
        self._cpp_wrapper = "cpp_wrapper" not in self.compile_options.get("options", {})
        self._step_fn: Callable | None = None
        self.compiled_steps = 0
        self.eager_steps = 0
        self._fn: Callable | None = None
        self._lr_tensors: list[torch.Tensor] | None = None
        self._float_lr = isinstance(optimizer, _FLOAT_LR_ONLY)
        self._compiled_lrs: list[float] | None = None
        self._primed = False
        self._hyper: list[list[Any]] | None = None
        if self.compiled:
            self._build()

    # ------------------------------------------------------------------ eager
    def _penalty(self, weights: list[torch.Tensor]) -> torch.Tensor:
        from trainwell.optim import kernel_penalty
        return kernel_penalty(weights, l1=self.l1, l2=self.l2)

    def eager(self, xb: torch.Tensor, yb: torch.Tensor) -> StepOutput:
        """The step op by op (the reference the compiled step must match)."""
        from trainwell.nn import apply_max_norm
        from trainwell.optim import clip_gradients

        self.eager_steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(xb)
        loss = self.loss_fn(logits, yb)
        penalty = None
        if self._penalized:
            penalty = self._penalty([self.params[i] for i in self._kernel_idx])
            (loss + penalty).backward()
            penalty = penalty.detach()
        else:
            loss.backward()
        if self._clipping:
            clip_gradients(self.params, **self.clip)
        self.optimizer.step()
        if self.max_norm:
            apply_max_norm(self.model, self.max_norm)
        return StepOutput(logits.detach(), loss.detach(), penalty)

    # ------------------------------------------------------------------ compiled
    def _build(self) -> None:
        from torch.func import functional_call, grad_and_value

        from trainwell.nn import apply_max_norm
        from trainwell.optim import clip_gradients

        model, names, params, loss_fn = self.model, self._names, self.params, self.loss_fn
        kernel_idx, penalized = self._kernel_idx, self._penalized
        # Optimizer.step without its wrappers: they insert graph breaks (to force no_grad,
        # which the whole step already runs under) and run user step hooks.
        raw_step = inspect.unwrap(type(self.optimizer).step)
        optimizer, clip, clipping, max_norm = self.optimizer, self.clip, self._clipping, \
            self.max_norm
        penalty_of = self._penalty

        buffer_names = [n for n, _ in model.named_buffers()]

        def objective(weights, buffers, xb, yb):
            # Buffers are explicit inputs: batch norm updates its running statistics in place.
            tensors = dict(zip(names, weights, strict=True))
            tensors.update(zip(buffer_names, buffers, strict=True))
            logits = functional_call(model, tensors, (xb,))
            loss = loss_fn(logits, yb)
            if penalized:
                penalty = penalty_of([weights[i] for i in kernel_idx])
                return loss + penalty, (logits, loss, penalty)
            return loss, (logits, loss, loss)

        def step(xb, yb):
            buffers = tuple(b for _, b in model.named_buffers())
            grads, (_, (logits, loss, penalty)) = grad_and_value(objective, has_aux=True)(
                tuple(params), buffers, xb, yb)
            torch._foreach_copy_([p.grad for p in params], list(grads))
            if clipping:
                clip_gradients(params, **clip)
            raw_step(optimizer)
            if max_norm:
                apply_max_norm(model, max_norm)
            return logits, loss, penalty

        self._step_fn = step
        self._compile()

    def _compile(self) -> None:
        options = dict(self.compile_options)
        if self._cpp_wrapper:
            # The C++ wrapper calls the graph's kernels without Python in between: ~10 % less
            # time per step on the chapter's dense nets (measured on a 2-core CPU).
            options["options"] = {"cpp_wrapper": True, **options.get("options", {})}
        try:
            self._fn = torch.compile(self._step_fn, **options)
        except Exception as e:  # torch.compile itself unavailable (platform, Python version)
            self._fallback(e)

    def _fallback(self, exc: BaseException) -> None:
        warnings.warn(f"torch.compile of the training step failed ({type(exc).__name__}: "
                      f"{str(exc)[:300]}); training in eager mode", TrainwellRuntimeWarning,
                      stacklevel=3)
        self.compiled = False
        self._fn = None

    def _swap_in_lr(self) -> list[Any] | None:
        """Put each group's lr into a 0-dim tensor (no recompiles when a schedule changes it).

        Returns the groups' own values to put back, or None when this step must run eagerly.
        """
        groups = self.optimizer.param_groups
        lrs = [g["lr"] for g in groups]
        # Other hyperparameters (momentum, betas cycled by 1cycle) are constants of the graph:
        # when they change, this step runs eagerly rather than recompiling.
        others = [[v for k, v in g.items() if k not in ("params", "lr")] for g in groups]
        if self._hyper is None:
            self._hyper = others
        elif others != self._hyper:
            return None
        if self._float_lr:  # Adam/AdamW: a changed lr would recompile; run eagerly instead
            if self._compiled_lrs is None:
                self._compiled_lrs = list(lrs)
            return lrs if lrs == self._compiled_lrs else None
        if self._lr_tensors is None:
            self._lr_tensors = [torch.tensor(float(v), dtype=torch.float32,
                                             device=self.params[0].device) for v in lrs]
        for g, t, v in zip(groups, self._lr_tensors, lrs, strict=True):
            if not isinstance(v, torch.Tensor):
                t.fill_(v)
                g["lr"] = t
        return lrs

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> StepOutput:
        if self._fn is None:
            return self.eager(xb, yb)
        opt = self.optimizer
        if not self._primed:  # the first step creates the optimizer state eagerly
            self._primed = True
            return self.eager(xb, yb)
        lrs = self._swap_in_lr()
        if lrs is None:
            return self.eager(xb, yb)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        try:
            with torch.no_grad():
                logits, loss, penalty = self._fn(xb, yb)
        except Exception as e:
            for g, v in zip(opt.param_groups, lrs, strict=True):
                g["lr"] = v
            if self._cpp_wrapper and self.compiled_steps == 0:  # retry with the Python wrapper
                self._cpp_wrapper = False
                self._compile()
                return self(xb, yb)
            self._fallback(e)  # any compiler failure: this and later steps run eagerly
            return self.eager(xb, yb)
        for g, v in zip(opt.param_groups, lrs, strict=True):
            g["lr"] = v
        self.compiled_steps += 1
        return StepOutput(logits, loss, penalty if self._penalized else None)


def make_train_step(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                    torch.Tensor], optimizer: torch.optim.Optimizer, *, clip_value: float = 0.0,
                    clip_norm: float = 0.0, clip_global_norm: float = 0.0, l1: float = 0.0,
                    l2: float = 0.0, max_norm: float = 0.0, compile: bool = False,
                    compile_options: dict[str, Any] | None = None) -> TrainStep:
    """Build the training step ``step(xb, yb) -> StepOutput(logits, loss, penalty)``.

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

    Example:
        >>> model = nn.Linear(3, 2)
        >>> step = make_train_step(model, nn.functional.mse_loss,
        ...                        torch.optim.SGD(model.parameters(), lr=0.1), clip_norm=1.0)
        >>> step(torch.ones(4, 3), torch.zeros(4, 2)).loss.shape
        torch.Size([])
    """
    return TrainStep(model, loss_fn, optimizer, clip_value=clip_value, clip_norm=clip_norm,
                     clip_global_norm=clip_global_norm, l1=l1, l2=l2, max_norm=max_norm,
                     compile=compile, compile_options=compile_options)


def needs_eager_step(callbacks: Iterable[Any], step: int) -> bool:
    """Whether step ``step`` must run op by op because a callback looks inside it.

    A callback that handles ``on_after_backward`` (gradients between backward and the update)
    may say which steps it needs with ``needs_backward_hook(step) -> bool``; trainwell's
    ``NanGuard`` (every ``check_every`` steps) and ``GradientProbe`` (every ``every`` steps)
    are known. Any other ``on_after_backward`` callback makes every step eager.
    """
    for cb in callbacks:
        ask = getattr(cb, "needs_backward_hook", None)
        if callable(ask):
            if ask(step):
                return True
            continue
        kind = type(cb).__name__
        if kind == "NanGuard" and isinstance(getattr(cb, "check_every", None), int):
            if (step + 1) % cb.check_every == 0:
                return True
        elif kind == "GradientProbe" and isinstance(getattr(cb, "every", None), int):
            if step % cb.every == 0:
                return True
        else:
            return True
    return False
