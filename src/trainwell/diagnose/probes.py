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
  outputs and of the weight gradient, for TensorBoard.

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

from trainwell.errors import ConfigError
from trainwell.train import Callback

__all__ = ["GradientProbe", "ProbedLayer", "find_layers", "STAT_NAMES", "HIST_BINS",
           "SIGMOID_SATURATION", "TANH_SATURATION"]

#: Columns of one layer's statistics in a sample, in order.
STAT_NAMES = ("act_mean", "act_std", "saturated", "dead", "grad_norm", "weight_norm",
              "update_norm", "act_min", "act_max", "act_sum_sq", "grad_min", "grad_max",
              "grad_sum", "grad_sum_sq", "act_nonfinite", "grad_nonfinite")
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


def _histogram(x: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts of ``bins`` equal bins between min and max, computed on the device (no sync)."""
    x = torch.nan_to_num(x.detach().reshape(-1).float(), nan=0.0, posinf=3.0e38, neginf=-3.0e38)
    lo, hi = torch.aminmax(x)
    scale = bins / (hi - lo).clamp_min(1e-30)
    idx = torch.nan_to_num((x - lo) * scale, nan=0.0).clamp_(0, bins - 1).long()
    counts = torch.zeros(bins, device=x.device).index_add_(0, idx, torch.ones_like(x))
    return counts, lo, hi


class GradientProbe(Callback):
    """Trainer callback that samples per-layer gradient-health statistics every ``every`` steps.

    On a sampled step (``step % every == 0``) it hooks the forward pass of every layer's
    activation, reads the weight gradients after backward (before clipping and the optimizer
    step) and the weight change across the step. Unsampled steps run without any hook.
    The samples are read with :meth:`record` (a :class:`trainwell.diagnose.stats.ProbeRecord`);
    :func:`trainwell.diagnose.verdicts.judge` turns them into verdicts.

    Args:
        every: sample one step in ``every`` (default 50: about 1 % extra time on the seeds'
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

    # -- trainer events ------------------------------------------------------------------------
    def on_fit_start(self, t) -> None:
        if self._model is None:
            self.layers = find_layers(t.model)

    def on_batch_start(self, t, step: int) -> None:
        if step % self.every or not self.layers:
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
        from trainwell.diagnose.stats import ProbeRecord

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
            if self._pending is None or not torch.is_tensor(output):
                return
            with torch.no_grad():
                y = output.detach().float()
                finite = torch.isfinite(y)
                nan = torch.full((), float("nan"), device=y.device)
                sat = dead = nan
                if kind == "sigmoid":
                    sat = ((y < SIGMOID_SATURATION) | (y > 1 - SIGMOID_SATURATION)).float().mean()
                elif kind == "tanh":
                    sat = (y.abs() > TANH_SATURATION).float().mean()
                elif kind == "relu":
                    # units are dim 1 (features or channels); a unit is dead when it is ≤ 0
                    # for every example (and every position) of the batch
                    per_unit = y.transpose(0, 1).reshape(y.shape[1], -1) if y.dim() > 1 \
                        else y.reshape(1, -1)
                    dead = (per_unit.amax(dim=1) <= 0).float().mean()
                counts, lo, hi = _histogram(y, bins)
                self._pending["act"][i] = (
                    torch.stack([y.mean(), y.std() if y.numel() > 1 else nan, sat, dead, lo, hi,
                                 y.square().sum(), (~finite).sum().float()]),
                    counts)
        return hook

    def _gradient_stats(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer: (norm, min, max, sum, sum of squares, non-finite count) and a histogram."""
        out = []
        with torch.no_grad():
            for layer in self.layers:
                w = layer.module.weight
                if w.grad is None:   # frozen or unused layer: nothing measured, nothing wrong
                    row = torch.full((6,), float("nan"), device=w.device)
                    row[5] = 0.0
                    out.append((row, torch.zeros(self.hist_bins, device=w.device)))
                    continue
                g = w.grad.detach().float()
                counts, lo, hi = _histogram(g, self.hist_bins)
                out.append((torch.stack([torch.linalg.vector_norm(g), lo, hi, g.sum(),
                                         g.square().sum(), (~torch.isfinite(g)).sum().float()]),
                            counts))
        return out

    def _finish(self, step: int | None) -> None:
        """Stack the pending sample's device tensors and move them to the host in one copy."""
        p, self._pending = self._pending, None
        if p is None or "grad" not in p:
            return
        self._store(p["step"], p["act"], p["grad"], p["snap"], updated=step is not None)

    def _store(self, step: int, acts: list, grads: list, snaps: list | None,
               updated: bool) -> None:
        nan = float("nan")
        rows, hists = [], []
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                w = layer.module.weight.detach()
                dev = w.device
                if acts[i] is None:
                    a = torch.full((8,), nan, device=dev)
                    a_hist = torch.zeros(self.hist_bins, device=dev)
                else:
                    a, a_hist = (v.to(dev) for v in acts[i])
                g, g_hist = grads[i]
                before = snaps[i].float() if snaps is not None else w.float()
                update = torch.linalg.vector_norm(w.float() - before) if updated \
                    else torch.full((), nan, device=dev)
                rows.append(torch.stack([
                    a[0], a[1], a[2], a[3], g[0], torch.linalg.vector_norm(before), update,
                    a[4], a[5], a[6], g[1], g[2], g[3], g[4], a[7], g[5]]))
                hists.append(torch.cat([a_hist, g_hist]))
            flat = torch.cat([torch.stack(rows).reshape(-1), torch.stack(hists).reshape(-1)])
            host = flat.cpu().numpy().astype(np.float32)   # host sync: one copy per sample
        self._steps.append(int(step))
        self._data.append(host)
        if len(self._steps) > self.max_samples:
            # keep the span of the whole training: drop every second sample, sample half as often
            self._steps = self._steps[::2]
            self._data = self._data[::2]
            self.every *= 2

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
