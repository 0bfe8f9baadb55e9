"""NanGuard: stop a diverging run (NaN/Inf loss or gradients) with its last good weights, naming
where the first non-finite value appeared."""

from __future__ import annotations

import math
from typing import Any

import torch

import trainwell.train.distributed as distributed
from trainwell.errors import ConfigError
from trainwell.train.callback_base import Callback, CancelStep

__all__ = ["NanGuard"]

class NanGuard(Callback):
    """Stop a diverging run: non-finite loss or gradients → restore good weights, say which layer.

    Every ``check_every`` steps (default 10) it computes the per-parameter gradient norms in
    one fused call and checks them and the epoch's running loss for NaN/Inf: one host sync
    per check, none in between. When they are finite it snapshots the weights (on the
    device). When they are not, the step's update is skipped; the current weights are kept
    if they are finite and gave a finite loss, else the snapshot is restored; then it sets ``t.stop_training``,
    ``t.status = "diverged"`` and ``t.divergence = {"step", "epoch", "layer", "grad_norm",
    "message"}``. The layer is where the non-finite value first appeared: the first layer
    whose output is NaN/Inf when the last batch is passed forward again (eager mode), else the
    parameter nearest the output whose gradient is non-finite (where backpropagation first
    produced it); with finite gradients (only the loss overflowed) the message says so and
    names the largest gradient norm. A loss that goes non-finite between two checks is caught
    at the epoch end from the epoch's loss; the layer is then named the same way.
    Checkpoints are never deleted; ``ModelCheckpoint`` writes no
    checkpoint of a diverged state, so the last good one stays.

    Args:
        check_every: steps between checks (1 = every step; a host sync each).
    """

    order = -100

    def __init__(self, check_every: int = 10):
        if not isinstance(check_every, int) or check_every < 1:
            raise ConfigError("train.nan_check_every", check_every, "an integer >= 1")
        self.check_every = check_every
        self._good: dict[str, torch.Tensor] | None = None
        self._names: list[str] = []
        self._params: list[torch.Tensor] = []
        self._prev_norms: list[float] | None = None
        self.divergence: dict[str, Any] | None = None
        self._last_input: Any = None
        self._hook: Any = None

    def on_fit_start(self, t):
        self._watch(t)
        self._snapshot(t)
        self._keep_last_input(t)

    def on_epoch_start(self, t, epoch):
        if len(self._params) != sum(p.requires_grad for p in t.model.parameters()):
            self._watch(t)   # layers were (un)frozen in a phase of the fit

    def _watch(self, t) -> None:
        named = [(n, p) for n, p in t.model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]

    def _keep_last_input(self, t) -> None:
        if self._hook is None and not getattr(t, "compile", False):
            # a reference to the batch in flight (no copy): replayed only on divergence
            def keep(_module, args):
                self._last_input = args[0] if args else None
            self._hook = t.model.register_forward_pre_hook(keep)

    def on_fit_end(self, t):
        self._release()

    def on_exception(self, t, exc):
        self._release()

    def _release(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._last_input = None

    def _first_non_finite_output(self, t) -> str | None:
        """Parameter name of the first layer whose output is NaN/Inf on the last batch."""
        x = self._last_input
        if not isinstance(x, torch.Tensor):
            return None
        order: list[str] = []
        found: list[str] = []
        names = {m: n for n, m in t.model.named_modules()}

        def check(module, _args, out):
            if found or not isinstance(out, torch.Tensor):
                return
            own = [n for n, _ in module.named_parameters(recurse=False)]
            if own:
                order.append(f"{names[module]}.{own[0]}".lstrip("."))
            if out.is_floating_point() and not bool(torch.isfinite(out).all()):  # host sync
                found.append(order[-1] if order else names[module])

        leaves = [m for m in t.model.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(check) for m in leaves]
        was_training = t.model.training
        t.model.eval()  # no dropout draw, no batch-norm statistics update
        try:
            with torch.no_grad():
                t.model(x)
        except Exception:
            return None
        finally:
            t.model.train(was_training)
            for h in hooks:
                h.remove()
        return found[0] if found and found[0] in self._names else None

    def _snapshot(self, t):
        state = t.model.state_dict()
        if self._good is None:
            self._good = {k: v.detach().clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                self._good[k].copy_(v)

    def needs_eager_step(self, step: int) -> bool:
        return (step + 1) % self.check_every == 0

    def on_after_backward(self, t, step):
        if (step + 1) % self.check_every == 0 and not self._check(t, step):
            raise CancelStep  # non-finite gradients: this update is not applied

    def _measure(self, t) -> tuple[list[str], list[float], bool]:
        """Names and norms of the current gradients, and whether the last loss is finite."""
        present = [(n, p.grad) for n, p in zip(self._names, self._params, strict=True)
                   if p.grad is not None]
        if present:
            norms = torch.stack(torch._foreach_norm([g for _, g in present]))
        else:
            norms = torch.zeros(0, device=t.device)
        loss = t.last_loss if t.last_loss is not None else torch.zeros(())
        loss = loss.reshape(1).to(norms if len(norms) else torch.float32)
        # under DDP: a worker's non-finite loss makes the sum non-finite on every worker, so
        # all of them decide alike (the gradients are already the same everywhere)
        loss = distributed.all_reduce_sum(loss.clone())
        values = torch.cat([loss.to(norms), norms]).tolist()
        # host sync: the line above, once per check_every steps
        return [n for n, _ in present], values[1:], math.isfinite(values[0])

    def _check(self, t, step) -> bool:
        """Whether the loss and the gradients are finite (else: diverged)."""
        names, norms, loss_finite = self._measure(t)
        if loss_finite and all(math.isfinite(v) for v in norms):
            self._prev_norms = norms
            self._snapshot(t)
            return True
        precision = getattr(t, "precision", None)
        if loss_finite and precision is not None and precision.gradients_may_overflow():
            return True  # fp16: the gradient scaler skips this step and lowers its factor
        self._diverged(t, step, names, norms, loss_finite)
        return False

    def on_epoch_end(self, t, epoch, logs):
        # Between two checks the epoch's loss can go non-finite: the gradients of the last
        # step are still in .grad, so the layer is named from them (the non-finite one, else
        # the largest norm), as at a regular check.
        if t.status != "diverged" and not math.isfinite(logs.get("loss", 0.0)):
            names, norms, loss_finite = self._measure(t)
            self._diverged(t, t.step - 1, names, norms, loss_finite)

    def _diverged(self, t, step, names, norms, loss_finite=False):
        layer, value, where = None, None, ""
        bad = [(n, v) for n, v in zip(names, norms, strict=True) if not math.isfinite(v)]
        forward = self._first_non_finite_output(t)  # before any weight is restored
        if forward is not None:
            layer, where = forward, (f"the first NaN/Inf appeared in the output of the layer "
                                    f"holding {forward!r}")
        elif bad:  # backpropagation runs from the output: the last bad one is where it began
            layer, value = bad[-1]
            where = f"gradients first became NaN/Inf in {layer!r}"
        elif names:  # finite gradients: only the loss overflowed
            i = max(range(len(names)), key=lambda j: norms[j])
            layer, value = names[i], norms[i]
            where = (f"the loss overflowed while every gradient was finite (largest gradient "
                     f"norm {value:.3g}, in {layer!r})")
        # The bad update has not been applied: keep the current weights when they are still
        # finite (the best "last good" state), else go back to the last checked snapshot.
        finite = loss_finite and all(
            bool(torch.isfinite(v).all())  # host sync: once, on divergence
            for v in t.model.state_dict().values() if v.is_floating_point())
        if not finite and self._good is not None:
            t.model.load_state_dict(self._good)
        msg = (f"training diverged at step {step} (epoch {t.epoch + 1}): the loss or the "
               f"gradients became NaN/Inf")
        if where:
            msg += f"; {where}"
        msg += ("; the last good weights were restored. Try a lower learning rate, gradient "
                "clipping or batch norm.")
        self.divergence = {"step": int(step), "epoch": int(t.epoch + 1), "layer": layer,
                           "grad_norm": value, "message": msg}
        t.divergence = self.divergence
        t.status = "diverged"
        t.stop_training = True
