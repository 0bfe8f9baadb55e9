"""Greedy layer-wise unsupervised pretraining (the chapter's "Unsupervised Pretraining").

When labels are scarce but unlabeled data is plentiful, train the hidden layers one at a time
without labels, each as a shallow autoencoder, then put an output layer on top and fine-tune
the whole network on the few labelled samples:

1. layer 1 learns ``h₁ = f₁(x)`` together with a linear decoder ``x̂ = W′h₁ + b′`` that
   minimises the reconstruction error ``MSE(x, x̂)`` on the unlabeled inputs;
2. layer *i* does the same on the codes ``hᵢ₋₁`` of the (now fixed) layers below it;
3. the encoders stay stacked in the network; the decoders are thrown away; the output layer
   keeps its fresh initialization and is trained, with the rest, on the labels.

Each "layer" is one hidden block of the network (for a builder network: ``linear`` → ``bn``
→ activation → ``dropout``), so the pretrained weights are exactly the ones fine-tuning starts
from.

Example:
    >>> result = greedy_pretrain({"input_shape": (28, 28), "n_outputs": 10,
    ...                           "hidden": [300, 100]}, x_unlabeled,
    ...                          epochs_per_layer=5)                      # doctest: +SKIP
    >>> result.model        # pretrained hidden layers, fresh output layer  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.tasks import task_with_loss
from trainwell.train import Trainer, get_rng_state, set_rng_state

__all__ = ["greedy_pretrain", "check_pretrain_options", "PretrainResult", "LayerReport", "stages"]


@dataclass
class LayerReport:
    """How one layer's autoencoder trained.

    Attributes:
        name: the hidden block (``hidden1`` …).
        in_features / out_features: code sizes below and above the layer.
        initial_mse: reconstruction MSE before training (random encoder and decoder).
        epoch_mse: mean reconstruction MSE of each epoch (training mode).
        final_mse: reconstruction MSE after training (eval mode, the whole input set).
    """

    name: str
    in_features: int
    out_features: int
    initial_mse: float
    epoch_mse: list[float] = field(default_factory=list)
    final_mse: float = math.nan


@dataclass
class PretrainResult:
    """The pretrained network and one :class:`LayerReport` per hidden layer."""

    model: nn.Module
    layers: list[LayerReport]

    def table(self) -> list[list[Any]]:
        """Rows ``[layer, shape, MSE before, MSE after]`` for reports."""
        return [[r.name, f"{r.in_features} → {r.out_features} → {r.in_features}",
                 round(r.initial_mse, 5), round(r.final_mse, 5)] for r in self.layers]


def stages(model: nn.Module) -> list[tuple[str, nn.Sequential]]:
    """Split a Sequential into stages: the input stage, one per hidden block, the head.

    Each stage after the first starts at a child holding parameters and takes the children
    without parameters that follow it (e.g. the ``ReLU`` after an ``nn.Linear`` of a plain
    stack), so a stage maps one layer's codes to the next layer's codes.
    """
    if not isinstance(model, nn.Sequential):
        raise ConfigError("pretrain.model", type(model).__name__,
                          "an nn.Sequential (a trainwell builder network or a stack of layers)")
    out: list[tuple[str, nn.Sequential]] = [("input", nn.Sequential())]
    for name, child in model.named_children():
        if any(True for _ in child.parameters()):
            out.append((name, nn.Sequential()))
        out[-1][1].add_module(name, child)
    return out


def _as_model(model_or_spec: nn.Module | Mapping[str, Any]) -> nn.Module:
    if isinstance(model_or_spec, nn.Module):
        return model_or_spec
    if isinstance(model_or_spec, Mapping):
        from trainwell.nn import build_model

        return build_model(**dict(model_or_spec))
    raise ConfigError("pretrain.model", type(model_or_spec).__name__,
                      "an nn.Sequential or a dict of build_model arguments")


def _device(device: str | torch.device | None, model: nn.Module) -> torch.device:
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        ref = next(model.parameters(), None)
        return ref.device if ref is not None else torch.device("cpu")
    return torch.device(device)


def _encode(stage: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The codes of a fixed stage (eval mode, no grad), in batches."""
    was = stage.training
    stage.eval()
    with torch.no_grad():
        out = torch.cat([stage(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    stage.train(was)
    return out.reshape(len(x), -1)


def _mse(stage: nn.Module, decoder: nn.Module, x: torch.Tensor, batch_size: int) -> float:
    was = stage.training
    stage.eval()
    total = torch.zeros((), device=x.device)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            total += ((decoder(stage(xb).reshape(len(xb), -1)) - xb) ** 2).sum()
    stage.train(was)
    return float(total) / x.numel()   # host sync: once per layer


class _Autoencoder(nn.Module):
    """One layer's shallow autoencoder: the stage (encoder) and a linear decoder."""

    def __init__(self, stage: nn.Module, decoder: nn.Module):
        super().__init__()
        self.stage, self.decoder = stage, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.stage(x).reshape(len(x), -1))


def _reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x_hat - x) ** 2).mean()


_RECONSTRUCTION = task_with_loss(_reconstruction_error)


def check_pretrain_options(epochs_per_layer: int, batch_size: int, lr: float) -> None:
    """Check :func:`greedy_pretrain`'s numbers, e.g. before loading any data.

    Raises:
        ConfigError: epochs per layer or batch size < 1, or lr ≤ 0.
    """
    for name, value in (("pretrain.epochs_per_layer", epochs_per_layer),
                        ("pretrain.batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(name, value, "an integer >= 1")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError("pretrain.lr", lr, "a number > 0")


def greedy_pretrain(model_or_spec: nn.Module | Mapping[str, Any], x_unlabeled: torch.Tensor,
                    epochs_per_layer: int = 5, *, batch_size: int = 128,
                    optimizer: str = "adam", lr: float = 1e-3,
                    optimizer_params: Mapping[str, Any] | None = None, seed: int = 0,
                    device: str | torch.device | None = "auto") -> PretrainResult:
    """Pretrain each hidden layer as a shallow autoencoder, greedily, bottom to top.

    For hidden block *i* with codes ``h = fᵢ(hᵢ₋₁)``, a linear decoder ``ĥᵢ₋₁ = W′h + b′`` is
    trained with the block to minimise ``mean((ĥᵢ₋₁ − hᵢ₋₁)²)`` on the unlabeled data; then
    the codes of block *i* (eval mode) become the inputs of block *i+1*. The network is changed
    in place (hidden blocks) and returned; its output layer is left as it was (fresh).

    Args:
        model_or_spec: an ``nn.Sequential`` (builder network or stack of layers) or a dict of
            :func:`~trainwell.nn.build_model` arguments.
        x_unlabeled: unlabeled inputs (N, …) shaped as the network's inputs.
        epochs_per_layer: epochs of each layer's autoencoder (default 5).
        batch_size: mini-batch size (default 128).
        optimizer: an optimizer name of ``trainwell.optim`` (default ``"adam"``).
        lr: its learning rate (default 1e-3); ``optimizer_params`` its other hyperparameters.
        seed: seeds the decoders' initialization and the shuffling (default 0).
        device: ``"auto"`` (default: CUDA if available), ``"cpu"``, ``"cuda"`` …

    Returns:
        PretrainResult with ``model`` and per-layer reconstruction errors.

    Raises:
        ConfigError: bad epochs/batch size/lr, a model that is not a Sequential.
        DataError: inputs that are empty, non-finite or do not fit the network.

    Example:
        >>> res = greedy_pretrain(model, x_unlabeled, epochs_per_layer=3)   # doctest: +SKIP
        >>> [r.final_mse < r.initial_mse for r in res.layers]               # doctest: +SKIP
        [True, True]
    """
    from trainwell.optim import make_optimizer

    check_pretrain_options(epochs_per_layer, batch_size, lr)
    if not isinstance(x_unlabeled, torch.Tensor) or x_unlabeled.dim() < 2 or len(x_unlabeled) == 0:
        raise DataError("pretrain: x_unlabeled must be a non-empty tensor of samples (N, ...)")
    model = _as_model(model_or_spec)
    parts = stages(model)
    hidden = parts[1:-1]
    if not hidden:
        raise ConfigError("pretrain.model", type(model).__name__,
                          "a network with at least one hidden layer below its output layer")
    dev = _device(device, model)
    model.to(dev)
    x = x_unlabeled.to(dev, dtype=torch.float32)
    if not bool(torch.isfinite(x).all()):   # host sync: once, input check
        raise DataError("pretrain: x_unlabeled holds NaN or infinite values")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    try:
        codes = _encode(parts[0][1], x, 4096)
        _encode(parts[1][1], codes[:2], 2)
    except RuntimeError as exc:
        raise DataError(f"pretrain: inputs of shape {tuple(x.shape[1:])} do not fit the "
                        f"network: {exc}") from exc
    opt_params = dict(optimizer_params or {})
    reports: list[LayerReport] = []
    for name, stage in hidden:
        width = _encode(stage, codes[:2], 2).shape[1]
        decoder = nn.Linear(width, codes.shape[1])
        nn.init.xavier_uniform_(decoder.weight, generator=gen)
        nn.init.zeros_(decoder.bias)
        decoder.to(dev)
        report = LayerReport(name, int(codes.shape[1]), int(width),
                             initial_mse=_mse(stage, decoder, codes, 4096))
        params = [p for p in (*stage.parameters(), *decoder.parameters()) if p.requires_grad]
        opt = make_optimizer(params, optimizer, lr=float(lr), **opt_params)
        # The layer's autoencoder trains on the one training step, like any fit: a Trainer
        # that shuffles with this run's generator and leaves the caller's RNG stream alone.
        rng = get_rng_state()
        trainer = Trainer(_Autoencoder(stage, decoder), task=_RECONSTRUCTION, optimizer=opt,
                          device=dev, seed=int(seed))
        set_rng_state(rng)
        trainer.generator = gen
        history = trainer.fit(codes, codes, epochs=epochs_per_layer, batch_size=batch_size)
        report.epoch_mse = [float(v) for v in history["loss"]]
        report.final_mse = _mse(stage, decoder, codes, 4096)
        reports.append(report)
        codes = _encode(stage, codes, 4096)
    model.trainwell_pretrain = {"layers": [r.name for r in reports],
                                "epochs_per_layer": epochs_per_layer}
    return PretrainResult(model=model, layers=reports)
