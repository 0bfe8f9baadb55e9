"""Dense blocks: linear → batch norm (before or after the activation) → activation → dropout."""

from __future__ import annotations

import copy

import torch
from torch import nn

from trainwell.errors import ConfigError, TrainwellError
from trainwell.nn.activations import ACTIVATIONS, make_activation
from trainwell.nn.fold import _bn_affine
from trainwell.nn.init import initialize_linear

__all__ = ["BATCH_NORM_PLACES", "DROPOUT_KINDS", "make_dropout", "dense_block",
           "fold_batch_norm"]

BATCH_NORM_PLACES = ("none", "before", "after")
DROPOUT_KINDS = ("auto", "standard", "alpha")


def make_dropout(p: float, kind: str = "standard") -> nn.Module:
    """An inverted-dropout module: in training each input is zeroed with probability ``p``
    and the survivors are scaled by 1/(1−p); at eval it is the identity.

    Args:
        p: drop rate, 0 ≤ p < 1.
        kind: ``"standard"`` (``nn.Dropout``) or ``"alpha"`` (``nn.AlphaDropout``, which keeps
            the mean and standard deviation of SELU activations).

    Example:
        >>> make_dropout(0.2, "alpha")
        AlphaDropout(p=0.2, inplace=False)
    """
    if kind == "alpha":
        return nn.AlphaDropout(p)
    if kind == "standard":
        return nn.Dropout(p)
    raise ConfigError("regularization.dropout_kind", kind, ["standard", "alpha"])


def dense_block(in_features: int, units: int, *, activation: str = "relu", init: str = "auto",
                init_distribution: str = "truncated_normal", batch_norm: str = "none",
                bn_momentum: float = 0.99, bn_epsilon: float = 1e-5, dropout: float = 0.0,
                dropout_kind: str = "standard", leaky_slope: float = 0.01) -> nn.Sequential:
    """One hidden layer as an ``nn.Sequential`` with children among ``linear, bn, act, dropout``.

    ``batch_norm="before"`` gives linear (no bias: BN's β replaces it) → bn → act;
    ``"after"`` gives linear → act → bn. ``bn_momentum`` is in the Keras convention:
    running ← running·m + batch·(1−m), i.e. torch momentum 1−m (torch updates the running
    variance with the unbiased batch variance, Keras with the biased one: a factor n/(n−1)).

    Args:
        in_features: inputs of the linear layer.
        units: units of the layer.
        activation: a name of ``ACTIVATIONS``. Default ``"relu"``.
        init: ``"auto"`` or an initializer name; init_distribution: ``"truncated_normal"``/``"normal"``/``"uniform"``.
        batch_norm: ``"none"`` (default), ``"before"`` or ``"after"`` the activation.
        bn_momentum: Keras momentum m in (0, 1), default 0.99; bn_epsilon: ε, default 1e-5.
        dropout: drop rate after the activation (0 = none); dropout_kind: ``"standard"``/``"alpha"``.
        leaky_slope: α of leaky_relu.

    Arguments are assumed valid; :func:`trainwell.nn.build_model` validates them.

    Example:
        >>> list(dense_block(784, 300, batch_norm="before").named_children())[1][0]
        'bn'
    """
    block = nn.Sequential()
    linear = nn.Linear(in_features, units, bias=batch_norm != "before")
    initialize_linear(linear, init, init_distribution, activation)
    block.add_module("linear", linear)
    add_activation_and_bn(block, nn.BatchNorm1d, units, activation=activation,
                          leaky_slope=leaky_slope, batch_norm=batch_norm,
                          bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    if dropout > 0:
        block.add_module("dropout", make_dropout(dropout, dropout_kind))
    return block


def _fold_any(model: nn.Module, config: dict | None) -> nn.Module:
    """CNNs and your own modules: fold each batch norm that directly follows a Linear/Conv."""
    from trainwell.nn.fold import fold_adjacent_batch_norms

    folded, done, left = fold_adjacent_batch_norms(model)
    if isinstance(config, dict):
        cfg = dict(config)
        if cfg.get("kind") == "cnn" and left == 0 and done > 0:
            # every BN folded, so the builder without BN (biases on) rebuilds this network
            cfg["batch_norm"] = "none"
            folded = _without_identities(folded)
        folded.trainwell_config = cfg
    return folded


def _without_identities(model: nn.Sequential) -> nn.Sequential:
    for block in model.children():
        if isinstance(block, nn.Sequential):
            for name in [n for n, m in block.named_children() if isinstance(m, nn.Identity)]:
                delattr(block, name)
    return model



def fold_batch_norm(model: nn.Sequential) -> nn.Sequential:
    """A copy of a model with its batch norms folded into the layers before them, for inference.

    CNNs (``kind="cnn"``) and any other module: every batch norm that directly follows a
    Linear or Conv layer (``batch_norm="before"``) is folded into it (see
    :func:`trainwell.nn.fold.fold_adjacent_batch_norms`); one after an activation stays,
    which is still exact. The dense builder network is described below.

    At eval batch norm is the per-unit affine map z·s + t with s = γ/√(σ²+ε) and
    t = β − μ·s (μ, σ² the running statistics). ``batch_norm="before"`` folds it into the
    block's own linear layer (W ← diag(s)·W, b ← s·b + t); ``"after"`` folds it into the next
    linear layer, which reads the normalized activations (W ← W·diag(s), b ← b + W·t). The
    result has no batch norm, outputs what the original outputs in eval mode (to float
    tolerance), is in eval mode, and its ``trainwell_config`` says ``batch_norm="none"`` so
    it saves and loads like any builder model.

    Args:
        model: a model made by :func:`trainwell.nn.build_model` (it is not modified).

    Example:
        >>> model = build_model(input_shape=4, n_outputs=2, hidden=[8], batch_norm="before")  # doctest: +SKIP
        >>> fast = fold_batch_norm(model)                                                        # doctest: +SKIP
    """
    config = getattr(model, "trainwell_config", None)
    if isinstance(config, dict) and config.get("kind", "mlp") != "mlp" or \
            isinstance(model, nn.Module) and not isinstance(config, dict):
        return _fold_any(model, config)
    if not isinstance(model, nn.Sequential) or not isinstance(config, dict):
        raise TrainwellError("fold_batch_norm needs a model made by build_model "
                             f"(got a {type(model).__name__} without trainwell_config)")
    folded = copy.deepcopy(model).eval()
    blocks = [getattr(folded, f"hidden{i}") for i in range(1, len(config["hidden"]) + 1)]
    following = [b.linear for b in blocks[1:]] + [folded.output]
    with torch.no_grad():
        if hasattr(folded, "input_bn"):                         # into the first linear layer
            first = blocks[0] if blocks else None
            target = first.linear if first is not None else folded.output
            s, t = _bn_affine(folded.input_bn)
            new = nn.Linear(target.in_features, target.out_features, bias=True,
                            device=target.weight.device, dtype=target.weight.dtype)
            new.weight.copy_(target.weight * s[None, :])
            bias = target.bias if target.bias is not None else torch.zeros_like(new.bias)
            new.bias.copy_(bias + target.weight @ t)
            if first is not None:
                first.linear = new
                following = [b.linear for b in blocks[1:]] + [folded.output]
            else:
                folded.output = new
            del folded.input_bn
        for block, nxt in zip(blocks, following, strict=True):
            if not hasattr(block, "bn"):
                continue
            s, t = _bn_affine(block.bn)
            names = [n for n, _ in block.named_children()]
            if names.index("bn") < names.index("act"):      # before: fold into own linear
                old = block.linear
                new = nn.Linear(old.in_features, old.out_features, bias=True,
                                device=old.weight.device, dtype=old.weight.dtype)
                new.weight.copy_(old.weight * s[:, None])
                bias = old.bias * s + t if old.bias is not None else t
                new.bias.copy_(bias)
                block.linear = new
            else:                                               # after: fold into the next one
                nxt.bias.add_(nxt.weight @ t)
                nxt.weight.mul_(s[None, :])
            del block.bn
    folded.trainwell_config = dict(config, batch_norm="none", input_batch_norm=False)
    return folded.eval()


def add_activation_and_bn(block: nn.Sequential, bn_class: type, features: int, *,
                          activation: str, leaky_slope: float, batch_norm: str,
                          bn_momentum: float, bn_epsilon: float) -> None:
    """Append ``act`` and, when asked, ``bn`` (before or after it) to a dense or conv block.

    The recipe's BN momentum is Keras's (running ← running·m + batch·(1−m)); torch's is 1 − m.
    """
    # leaky_slope is leaky_relu's α only; elu and prelu keep their own defaults.
    slope = leaky_slope if ACTIVATIONS.canonical(activation) == "leaky_relu" else None
    act = make_activation(activation, alpha=slope, features=features)
    if batch_norm not in ("before", "after"):
        block.add_module("act", act)
        return
    bn = bn_class(features, eps=bn_epsilon, momentum=round(1.0 - bn_momentum, 15))
    for name, module in (("bn", bn), ("act", act)) if batch_norm == "before" else \
            (("act", act), ("bn", bn)):
        block.add_module(name, module)
