"""Probes: per-layer activation and gradient statistics, sampled every k training steps.

A *layer* is a weight-bearing ``nn.Linear`` / ``nn.Conv*`` module, in the order of
``model.named_modules()``. Each layer is paired with the first activation module that follows
it in that order (before the next weight-bearing layer): its output is what the activation
statistics describe. A layer without an activation (the output layer, or a network whose
activations are functional calls) is described by its own output.

What one sample holds, per layer (see :data:`STAT_NAMES`):

- ``act_mean``, ``act_std``: mean and standard deviation of the observed output over the batch;
- ``saturated``: fraction of the outputs of a sigmoid in its flat tails (y < 0.01 or
  y > 0.99, where σ'(z) = y(1 − y) < 0.0099, i.e. < 4 % of its maximum 0.25) or of a tanh
  with |y| > 0.99 (tanh'(z) = 1 − y² < 0.02, 2 % of its maximum 1). NaN for activations that
  do not saturate on both sides;
- ``dead``: fraction of the units of a ReLU (or ReLU6) whose output is ≤ 0 for *every*
  example of the batch (and every position, for convolutions): such a unit passes no gradient
  at all. NaN for activations whose gradient never vanishes for negative inputs (leaky ReLU,
  PReLU, RReLU, ELU, SELU, GELU, Swish, Mish);
- ``grad_norm``: ‖∂L/∂W‖₂ of the layer's weight, read when the gradients are ready and before
  clipping and the optimizer step (the trainer's ``on_after_backward`` event);
- ``weight_norm`` ‖W‖₂ before the step and ``update_norm`` ‖W_after − W_before‖₂ across the
  optimizer step (constraints such as max-norm included);
- small histograms (:data:`HIST_BINS` bins between the tensor's min and max) of the observed
  outputs and of the weight gradient, for TensorBoard;
- ``act_nonfinite`` / ``grad_nonfinite``: 1 when the outputs / the gradient hold a NaN or Inf.

Cost: forward hooks are attached at the start of a sampled step and removed as soon as its
backward pass is done, so unsampled steps run exactly the un-probed code; every statistic of a
sample stays on the device until the sample is complete and then crosses to the host in one
transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainwell.diagnose.stats import STAT_NAMES, ProbeRecord
from trainwell.errors import ConfigError
from trainwell.train import Callback

__all__ = ["GradientProbe", "ProbedLayer", "find_layers", "STAT_NAMES", "HIST_BINS",
           "SIGMOID_SATURATION", "TANH_SATURATION"]

#: Bins of the activation and gradient histograms kept per layer and sample.
HIST_BINS = 24
#: A sigmoid output below this or above 1 − this is saturated (σ' < 4 % of its maximum).
SIGMOID_SATURATION = 0.01
#: A tanh output with |y| above this is saturated (tanh' < 2 % of its maximum).
TANH_SATURATION = 0.99

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
             nn.ConvTranspose2d, nn.ConvTranspose3d)
# Activation module classes → what the probe measures on them.
_SATURATING = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
_CAN_DIE = {nn.ReLU: "relu", nn.ReLU6: "relu"}
_NONSATURATING = (nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                  nn.Mish, nn.Softplus, nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid,
                  nn.LogSigmoid, nn.Softsign, nn.Tanhshrink)


def _activation_kind(module: nn.Module) -> str | None:
    """``"sigmoid"``/``"tanh"`` (saturating), ``"relu"`` (can die), ``"other"`` or ``None``."""
    for cls, kind in (*_SATURATING.items(), *_CAN_DIE.items()):
        if type(module) is cls:
            return kind
    if isinstance(module, _NONSATURATING):
        return "other"
    if type(module).__module__ == "torch.nn.modules.activation" \
            and not isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin,
                                        nn.MultiheadAttention)):
        return "other"
    return None


@dataclass
class ProbedLayer:
    """One layer the probe watches.

    Attributes:
        name: qualified name of the weight-bearing module (``"hidden3.linear"``, ``"0"``).
        module: the ``nn.Linear``/``nn.Conv*``.
        activation: qualified name of the paired activation module, or ``None``.
        observed: the module whose output the activation statistics describe.
        kind: ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"other"`` (a non-saturating,
            non-dying activation) or ``"none"`` (no activation module: the layer's own output).
    """

    name: str
    module: nn.Module
    activation: str | None
    observed: nn.Module
    kind: str

    @property
    def label(self) -> str:
        """Short display name: the block name for builder models (``hidden3``), else the name."""
        parent, _, leaf = self.name.rpartition(".")
        return parent if parent and leaf in ("linear", "conv") else self.name

    @property
    def n_weights(self) -> int:
        return int(self.module.weight.numel())


def find_layers(model: nn.Module) -> list[ProbedLayer]:
    """The weight-bearing layers of ``model`` in module order, each paired with its activation.

    Works on any module tree of Linear/Conv/BatchNorm/activation/dropout modules: builder
    models (``hidden1.linear`` → ``hidden1.act``), plain ``nn.Sequential`` stacks and custom
    modules whose submodules are registered in the order they are applied. An activation module
    used at several places of the network (the same instance) is not paired, because its
    output would mix those places; its layers are described by their own outputs.

    Raises:
        ConfigError: when the model has no Linear or Conv layer with a weight.

    Example:
        >>> [(l.name, l.activation) for l in find_layers(nn.Sequential(
        ...     nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))]
        [('0', '1'), ('2', None)]
    """
    model = getattr(model, "_orig_mod", model)   # torch.compile wrapper
    uses: dict[int, int] = {}
    for _, m in model.named_modules(remove_duplicate=False):
        uses[id(m)] = uses.get(id(m), 0) + 1
    layers: list[ProbedLayer] = []
    open_layer: ProbedLayer | None = None
    for name, m in model.named_modules():
        if isinstance(m, _WEIGHTED) and getattr(m, "weight", None) is not None:
            open_layer = ProbedLayer(name or type(m).__name__, m, None, m, "none")
            layers.append(open_layer)
            continue
        kind = _activation_kind(m)
        if kind is not None and open_layer is not None and uses[id(m)] == 1:
            open_layer.activation, open_layer.observed, open_layer.kind = name, m, kind
            open_layer = None
    if not layers:
        raise ConfigError("model", type(model).__name__,
                          "a module with at least one nn.Linear or nn.Conv layer")
    return layers


def _histogram(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bins: int) -> torch.Tensor:
    """Counts of ``bins`` equal bins between ``lo`` and ``hi``, on the device (no host sync).
    Non-finite values land in bin 0 (the sample is flagged non-finite anyway)."""
    x = x.reshape(-1)
    scale = bins / (hi - lo).clamp_min(1e-30)
    idx = ((x - lo) * scale).nan_to_num_(0.0).clamp_(0, bins - 1).long()
    ones = torch.ones((), device=x.device).expand(idx.shape[0])
    return torch.zeros(bins, device=x.device).index_add_(0, idx, ones)


class GradientProbe(Callback):
    """Trainer callback that samples per-layer gradient-health statistics every ``every`` steps.

    On a sampled step (``step % every == 0``) it hooks the forward pass of every layer's
    activation, reads the weight gradients after backward (before clipping and the optimizer
    step) and the weight change across the step. Unsampled steps run without any hook.
    The samples are read with :meth:`record` (a :class:`trainwell.diagnose.stats.ProbeRecord`);
    :func:`trainwell.diagnose.verdicts.judge` turns them into verdicts.

    Args:
        every: sample one step in ``every`` (default 50: 1–4 % extra time on the chapter's
            model A). Must be ≥ 1.
        max_samples: samples kept at most (default 512); when full, every second sample is
            dropped and ``every`` doubles, so the record still spans the whole training.
        model: the model to watch; default: the trainer's ``t.model`` at fit start.
        hist_bins: bins of the small histograms (default :data:`HIST_BINS`).

    Example:
        >>> probe = GradientProbe(every=10)
        >>> trainer = Trainer(model, callbacks=[probe])           # doctest: +SKIP
        >>> trainer.fit(x, y, epochs=1)                           # doctest: +SKIP
        >>> print(judge(probe.record()).network)                  # doctest: +SKIP
    """

    order = 50   # after callbacks that change the model at fit start, before loggers

    def __init__(self, every: int = 50, max_samples: int = 512, *, model: nn.Module | None = None,
                 hist_bins: int = HIST_BINS):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError("train.diagnose_every", every, "an integer ≥ 1 (steps)")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ConfigError("max_samples", max_samples, "an integer ≥ 2")
        self.every = every
        self.max_samples = max_samples
        self.hist_bins = int(hist_bins)
        self.layers: list[ProbedLayer] = []
        self._model = model
        if model is not None:
            self.layers = find_layers(model)
        self._handles: list = []
        self._pending: dict | None = None
        self._steps: list[int] = []
        self._data: list[np.ndarray] = []
        self.divergence: dict | None = None
        self.post_mortem_step: int | None = None

    def needs_eager_step(self, step: int) -> bool:
        """Whether step ``step`` is sampled: the trainer then runs it op by op (not as one
        compiled graph) so that the activations and gradients can be read."""
        return step % self.every == 0

    needs_backward_hook = needs_eager_step  # the older name

    # -- trainer events ------------------------------------------------------------------------
    def on_fit_start(self, t) -> None:
        if self._model is None:
            self.layers = find_layers(t.model)

    def on_batch_start(self, t, step: int) -> None:
        if not self.needs_eager_step(step) or not self.layers:
            return
        self._finish(None)   # a previous sample cut short (e.g. stopped before its batch end)
        self._pending = {"step": int(step), "act": [None] * len(self.layers)}
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.observed.register_forward_hook(self._forward_hook(i)))

    def on_after_backward(self, t, step: int) -> None:
        self._remove_hooks()
        p = self._pending
        if p is None or p["step"] != step:
            return
        # read the gradients now: clipping and the optimizer may change them in place
        p["grad"], p["snap"] = self._gradient_stats(), [
            lay.module.weight.detach().clone() for lay in self.layers]

    def on_batch_end(self, t, step: int) -> None:
        p = self._pending
        if p is not None and p["step"] == step:
            self._finish(step)

    def on_fit_end(self, t) -> None:
        self._remove_hooks()
        self._finish(None)
        self._post_mortem(t)
        divergence = getattr(t, "divergence", None)   # set by the trainer's NanGuard
        if isinstance(divergence, dict):
            self.divergence = {k: v for k, v in divergence.items()
                               if isinstance(v, (str, int, float, type(None)))}

    def on_exception(self, t, exc) -> None:
        self._remove_hooks()
        self._finish(None)
        self._post_mortem(t)

    # -- state (checkpoints) ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        data = np.stack(self._data) if self._data else np.zeros((0, 0), np.float32)
        return {"every": self.every, "steps": torch.tensor(self._steps, dtype=torch.long),
                "data": torch.from_numpy(data)}

    def load_state_dict(self, d: dict) -> None:
        self.every = int(d.get("every", self.every))
        self._steps = [int(s) for s in d["steps"].tolist()]
        self._data = list(d["data"].numpy()) if len(self._steps) else []

    # -- results ---------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return len(self._steps)

    def record(self):
        """All samples so far as a :class:`trainwell.diagnose.stats.ProbeRecord`."""
        n_layers, n_stats, bins = len(self.layers), len(STAT_NAMES), self.hist_bins
        flat = np.stack(self._data) if self._data else np.zeros(
            (0, n_layers * (n_stats + 2 * bins)), np.float32)
        s = flat.shape[0]
        stats = flat[:, : n_layers * n_stats].reshape(s, n_layers, n_stats)
        hists = flat[:, n_layers * n_stats:].reshape(s, n_layers, 2, bins)
        return ProbeRecord(
            steps=np.asarray(self._steps, dtype=np.int64), stats=stats.astype(np.float64),
            hists=hists.astype(np.float64), layers=[lay.label for lay in self.layers],
            modules=[lay.name for lay in self.layers], kinds=[lay.kind for lay in self.layers],
            n_weights=np.asarray([lay.n_weights for lay in self.layers], dtype=np.int64),
            every=self.every, meta={k: v for k, v in (("divergence", self.divergence),
                                                      ("post_mortem", self.post_mortem_step))
                                    if v is not None})

    # -- internals -------------------------------------------------------------------------------
    def _forward_hook(self, i: int):
        kind = self.layers[i].kind
        bins = self.hist_bins

        def hook(module, inputs, output):
            if self._pending is None or not torch.is_tensor(output) or output.dim() == 0:
                return
            with torch.no_grad():
                y = output.detach().float()
                n = y.numel()
                std, mean = torch.std_mean(y) if n > 1 else (torch.full_like(y.sum(), nan),
                                                              y.sum())
                zero = torch.zeros((), device=y.device)
                sat = dead = zero
                units = y.shape[1] if y.dim() > 1 else 1
                if kind == "sigmoid":   # y < 0.01 or y > 0.99
                    sat = ((y - 0.5).abs_() > 0.5 - SIGMOID_SATURATION).sum()
                elif kind == "tanh":
                    sat = (y.abs() > TANH_SATURATION).sum()
                elif kind == "relu":
                    # units are dim 1 (features or channels); a unit is dead when it is ≤ 0
                    # for every example (and every position) of the batch
                    dims = tuple(d for d in range(y.dim()) if d != 1) if y.dim() > 1 else (0,)
                    dead = (y.amax(dim=dims) <= 0).sum()
                lo, hi = torch.aminmax(y)
                counts = _histogram(y, lo, hi, bins)
                self._pending["act"][i] = (
                    torch.stack([mean, std, sat.float(), dead.float(), lo, hi]), counts,
                    n, units)
        nan = float("nan")
        return hook

    def _gradient_stats(self) -> tuple[list, torch.Tensor | None]:
        """Per layer (min, max, sum) of the weight gradient and its histogram; the norms of all
        layers in one fused call."""
        out, grads = [], []
        with torch.no_grad():
            for layer in self.layers:
                g = layer.module.weight.grad
                if g is None:   # frozen or unused layer: nothing measured, nothing wrong
                    out.append(None)
                    continue
                g = g.detach().float()
                lo, hi = torch.aminmax(g)
                out.append((torch.stack([lo, hi, g.sum()]), _histogram(g, lo, hi,
                                                                       self.hist_bins)))
                grads.append(g)
            norms = torch.stack(torch._foreach_norm(grads)) if grads else None
        return out, norms

    def _finish(self, step: int | None) -> None:
        """Stack the pending sample's device tensors and move them to the host in one copy."""
        p, self._pending = self._pending, None
        if p is None or "grad" not in p:
            return
        self._store(p["step"], p["act"], p["grad"], p["snap"], updated=step is not None)

    def _store(self, step: int, acts: list, grads: tuple, snaps: list | None,
               updated: bool) -> None:
        bins = self.hist_bins
        grad_rows, grad_norms = grads
        with torch.no_grad():
            weights = [lay.module.weight.detach() for lay in self.layers]
            dev = weights[0].device
            before = snaps if snaps is not None else weights
            parts = [torch.stack(torch._foreach_norm(before))]                        # (L,)
            parts.append(torch.stack(torch._foreach_norm(torch._foreach_sub(weights, before)))
                         if updated else torch.full((len(weights),), float("nan"), device=dev))
            parts.append(grad_norms if grad_norms is not None
                         else torch.zeros(0, device=dev))
            empty_a = torch.full((6,), float("nan"), device=dev)
            empty_h = torch.zeros(bins, device=dev)
            for a in acts:
                parts += [a[0].to(dev), a[1].to(dev)] if a is not None else [empty_a, empty_h]
            for g in grad_rows:
                parts += [g[0], g[1]] if g is not None else [torch.full((3,), float("nan"),
                                                                        device=dev), empty_h]
            host = torch.cat([t.reshape(-1).float() for t in parts]).cpu().numpy()  # host sync: one copy per sample
        self._steps.append(int(step))
        self._data.append(self._unpack(host, acts, grad_rows))
        if len(self._steps) > self.max_samples:
            # keep the span of the whole training: drop every second sample, sample half as often
            self._steps = self._steps[::2]
            self._data = self._data[::2]
            self.every *= 2

    def _unpack(self, host: np.ndarray, acts: list, grad_rows: list) -> np.ndarray:
        """Host side: the flat copy → one row of STAT_NAMES per layer + histograms."""
        n_layers, bins = len(self.layers), self.hist_bins
        col = {name: j for j, name in enumerate(STAT_NAMES)}
        stats = np.full((n_layers, len(STAT_NAMES)), np.nan)
        hists = np.zeros((n_layers, 2, bins))
        stats[:, col["act_nonfinite"]] = stats[:, col["grad_nonfinite"]] = 0.0
        pos = 0

        def take(k: int) -> np.ndarray:
            nonlocal pos
            pos += k
            return host[pos - k:pos].astype(np.float64)

        stats[:, col["weight_norm"]] = take(n_layers)
        stats[:, col["update_norm"]] = take(n_layers)
        present = [i for i, g in enumerate(grad_rows) if g is not None]
        stats[present, col["grad_norm"]] = take(len(present))
        for i, a in enumerate(acts):
            mean, std, sat, dead, lo, hi = take(6)
            hists[i, 0] = take(bins)
            if a is None:
                continue
            n, units = a[2], a[3]
            kind = self.layers[i].kind
            stats[i, col["act_mean"]], stats[i, col["act_std"]] = mean, std
            stats[i, col["saturated"]] = sat / n if kind in ("sigmoid", "tanh") else np.nan
            stats[i, col["dead"]] = dead / units if kind == "relu" else np.nan
            stats[i, col["act_min"]], stats[i, col["act_max"]] = lo, hi
            stats[i, col["act_sum_sq"]] = (n - 1) * std ** 2 + n * mean ** 2 if n > 1 \
                else mean ** 2
            stats[i, col["act_nonfinite"]] = float(not np.isfinite(mean))
        for i, g in enumerate(grad_rows):
            lo, hi, total = take(3)
            hists[i, 1] = take(bins)
            if g is None:
                continue
            stats[i, col["grad_min"]], stats[i, col["grad_max"]] = lo, hi
            stats[i, col["grad_sum"]] = total
            norm = stats[i, col["grad_norm"]]
            stats[i, col["grad_sum_sq"]] = norm ** 2
            stats[i, col["grad_nonfinite"]] = float(not (np.isfinite(total)
                                                         and np.isfinite(norm)))
        return np.concatenate([stats.reshape(-1), hists.reshape(-1)]).astype(np.float32)

    def _post_mortem(self, t) -> None:
        """After a run that ended with non-finite weights or gradients, add a final sample of
        them, so that a divergence between two sampled steps is still seen (one host sync)."""
        if not self.layers:
            return
        with torch.no_grad():
            tensors = [lay.module.weight for lay in self.layers]
            tensors += [w.grad for w in tensors if w.grad is not None]
            finite = torch.stack([torch.isfinite(x).all() for x in tensors]).all()
            if bool(finite):   # host sync: once, at the end of fit
                return
        step = int(getattr(t, "step", self._steps[-1] + 1 if self._steps else 0))
        if self._steps and step <= self._steps[-1]:
            step = self._steps[-1] + 1
        self._store(step, [None] * len(self.layers), self._gradient_stats(), None, updated=False)
        self.post_mortem_step = step

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __repr__(self) -> str:
        return f"GradientProbe(every={self.every}, layers={len(self.layers)}, " \
               f"samples={self.n_samples})"
