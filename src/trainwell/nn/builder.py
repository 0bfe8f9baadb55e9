"""``build_model``: a dense network from plain keyword arguments (the recipe's model section)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from trainwell.checks import check_field, is_integer
from trainwell.errors import ConfigError, TrainwellWarning
from trainwell.nn.activations import ACTIVATIONS
from trainwell.nn.blocks import BATCH_NORM_PLACES, DROPOUT_KINDS, dense_block, make_dropout
from trainwell.nn.conv import build_cnn_layers, parse_conv
from trainwell.nn.init import INITIALIZERS, check_distribution, initialize_linear, resolve_init

__all__ = ["build_model", "build_cnn", "SelfNormalizationWarning", "TASK_NAMES", "MODEL_KINDS",
           "check_self_normalizing_inputs", "expand_hidden", "OUTPUT_INITS", "HIDDEN_ACCEPTED"]

TASK_NAMES = ("multiclass", "binary", "multilabel", "regression")

#: ``output_init`` values besides the initializer names: ``"same"`` follows ``init``.
OUTPUT_INITS = ("same",)

HIDDEN_ACCEPTED = ("a list of integers ≥ 1, e.g. [300, 100], or {layers = N, units = U} "
                   "for N layers of U units")


def expand_hidden(hidden: Any, *, field: str = "model.hidden") -> list[int]:
    """Units per hidden layer from a list, one integer, or ``{"layers": N, "units": U}``.

    The compact form is the one the tune space uses for depth and width: a 100-layer network
    of 100 units is ``{"layers": 100, "units": 100}`` instead of a list of 100 numbers.

    Example:
        >>> expand_hidden({"layers": 3, "units": 100})
        [100, 100, 100]
    """
    value = hidden
    if isinstance(value, Mapping):
        layers, units = value.get("layers"), value.get("units")
        if set(value) != {"layers", "units"} or not (is_integer(layers) and is_integer(units)) \
                or layers < 1 or units < 1:
            raise ConfigError(field, dict(value), HIDDEN_ACCEPTED)
        return [int(units)] * int(layers)
    if is_integer(value):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
            or not all(is_integer(h) and h > 0 for h in value):
        raise ConfigError(field, hidden, HIDDEN_ACCEPTED)
    return [int(h) for h in value]
#: ``model.kind``: a dense network, a convolutional one, or a module your factory builds.
MODEL_KINDS = ("mlp", "cnn", "module")


class SelfNormalizationWarning(TrainwellWarning, UserWarning):
    """A SELU network was built in a way that breaks its self-normalizing conditions."""


def _choice(field: str, v: Any, accepted: Sequence[str]) -> str:
    key = v.strip().lower() if isinstance(v, str) else v
    if key not in accepted:
        raise ConfigError(field, v, accepted)
    return key


def _shape(v: Any) -> list[int]:
    dims = [v] if is_integer(v) else v
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims \
            or not all(is_integer(d) and d > 0 for d in dims):
        raise ConfigError("model.input_shape", v, "a positive integer or a list of them")
    return [int(d) for d in dims]


def build_model(*, input_shape: int | Sequence[int], n_outputs: int, task: str = "multiclass",
                hidden: Sequence[int] | Mapping[str, int] = (300, 100),
                activation: str = "relu", init: str = "auto", init_distribution: str = "truncated_normal",
                output_init: str = "same", input_batch_norm: bool = False,
                batch_norm: str = "none",
                bn_momentum: float = 0.99, bn_epsilon: float = 1e-5, dropout: float = 0.0,
                dropout_kind: str = "auto", dropout_top_k: int = 0, input_dropout: float = 0.0,
                leaky_slope: float = 0.01, kind: str = "mlp", conv: Sequence[Any] | None = None,
                module: str | None = None, args: dict[str, Any] | None = None,
                reuse: int | None = None, source_n_outputs: int | None = None) -> nn.Module:
    """A dense network that outputs logits, built with the practices of the chapter.

    ``kind="cnn"`` puts a convolutional base described by ``conv`` below the dense layers
    (see :func:`build_cnn`); ``kind="module"`` calls your factory ``module`` (see
    :func:`trainwell.nn.build_from_factory`).

    The result is an ``nn.Sequential`` with named children: ``flatten`` (inputs with more than
    one dimension), ``input_dropout`` (if > 0), ``hidden1`` … ``hiddenN`` (each an
    ``nn.Sequential`` of ``linear``, ``bn``, ``act``, ``dropout`` in that order, with ``bn``
    after ``act`` for ``batch_norm="after"``) and ``output`` (``nn.Linear``, no activation).
    The arguments are stored as a plain dict in ``model.trainwell_config``.

    Args:
        input_shape: shape of one sample, e.g. ``(28, 28)`` or ``784``.
        n_outputs: output units (classes, or 1 for binary/regression).
        task: ``"multiclass"`` (default), ``"binary"``, ``"multilabel"`` or ``"regression"``.
        hidden: units per hidden layer, or ``{"layers": N, "units": U}``. Default ``(300, 100)``.
        activation: hidden activation, a name of ``ACTIVATIONS``. Default ``"relu"``.
        init: ``"auto"`` (Table 11-1 match: glorot/he/lecun) or ``"glorot"``, ``"he"``,
            ``"lecun"``, ``"normal"``. With ``"auto"`` the output layer gets glorot (no
            activation); an explicit init applies to every layer. Biases start at 0.
        init_distribution: ``"truncated_normal"`` (default; Keras' ``*_normal``: cut at ±2 std,
            same variance), ``"normal"`` or ``"uniform"``.
        output_init: the output layer's initializer. ``"same"`` (default) follows ``init``:
            glorot when ``init="auto"`` (Table 11-1: no activation), else the hidden layers'
            initializer; or an initializer name (Keras' output default: ``"glorot"``).
        input_batch_norm: batch norm on the flattened inputs before the first hidden layer,
            as in the chapter's batch-norm model (dense networks). Default False.
        batch_norm: ``"none"`` (default), ``"before"`` (linear without bias → bn → act) or
            ``"after"`` (linear → act → bn) the activation.
        bn_momentum: Keras convention, running ← running·m + batch·(1−m); default 0.99.
        bn_epsilon: ε in (x − μ_B)/√(σ²_B + ε); default 1e-5 (PyTorch); Keras uses 1e-3.
        dropout: inverted-dropout rate after hidden layers, 0 ≤ p < 1; default 0.
        dropout_kind: ``"auto"`` (alpha dropout for SELU, standard otherwise), ``"standard"``
            or ``"alpha"``.
        dropout_top_k: put dropout only in the top k hidden layers; 0 (default) = all.
        input_dropout: dropout rate on the inputs; default 0.
        leaky_slope: α of leaky_relu; default 0.01.
        kind: ``"mlp"`` (default), ``"cnn"`` or ``"module"``.
        conv: the convolutional base of ``kind="cnn"``, e.g. ``[[32, 3], "pool", [64, 3]]``.
        module: ``"package.module:factory"`` or ``"file.py:factory"`` for ``kind="module"``;
            args: the factory's extra keyword arguments (``[model.args]``).
        reuse, source_n_outputs: set by transfer learning on a factory network: keep its
            first ``reuse`` blocks (built for ``source_n_outputs``) under a new output layer.

    Raises:
        ConfigError: naming the recipe field of any bad value.

    Warns:
        SelfNormalizationWarning: SELU with batch norm, a non-lecun init or standard dropout.

    Example:
        >>> model = build_model(input_shape=(28, 28), n_outputs=10, hidden=[100, 100],
        ...                     activation="selu", dropout=0.1)
        >>> [name for name, _ in model.named_children()]
        ['flatten', 'hidden1', 'hidden2', 'output']
    """
    kind = _choice("model.kind", "mlp" if kind is None else kind, MODEL_KINDS)
    shape = _shape(input_shape)
    if not is_integer(n_outputs) or n_outputs < 1:
        raise ConfigError("model.n_outputs", n_outputs, "a positive integer")
    task = _choice("model.task", task, TASK_NAMES)
    if kind == "module":
        from trainwell.nn.factory import build_from_factory
        return build_from_factory(module, input_shape=tuple(shape), n_outputs=int(n_outputs),
                                  args=args, task=task, reuse=reuse,
                                  source_n_outputs=source_n_outputs)
    if kind == "cnn":
        conv = [list(c) if isinstance(c, tuple) else c for c in parse_conv(conv)]
    hidden = expand_hidden(hidden)
    activation = ACTIVATIONS.get(activation, field="model.activation").name
    init_name = resolve_init(init, activation)
    init = init.strip().lower() if init.strip().lower() == "auto" else init_name
    init_distribution = check_distribution(init_distribution)
    output_init = _output_init(output_init)
    if not isinstance(input_batch_norm, bool):
        raise ConfigError("model.input_batch_norm", input_batch_norm, "true or false")
    batch_norm = _choice("model.batch_norm", "none" if batch_norm is None else batch_norm,
                         BATCH_NORM_PLACES)
    # the same ranges the recipe schema states (trainwell.checks.RANGES)
    check_field("model.bn_momentum", bn_momentum)
    check_field("model.bn_epsilon", bn_epsilon)
    check_field("model.leaky_slope", leaky_slope)
    dropout = check_field("regularization.dropout", dropout)
    input_dropout = check_field("regularization.input_dropout", input_dropout)
    dropout_kind = _choice("regularization.dropout_kind", dropout_kind, DROPOUT_KINDS)
    if not is_integer(dropout_top_k) or not 0 <= dropout_top_k <= len(hidden):
        raise ConfigError("regularization.dropout_top_k", dropout_top_k,
                          f"an integer from 0 (all hidden layers) to {len(hidden)}")
    _warn_self_normalization(activation, init_name, batch_norm,
                             "alpha" if dropout_kind == "auto" and activation == "selu" else
                             ("standard" if dropout_kind == "auto" else dropout_kind),
                             dropout > 0 or input_dropout > 0, input_batch_norm)

    config = dict(input_shape=shape, n_outputs=int(n_outputs), task=task, hidden=hidden,
                  activation=activation, init=init, init_distribution=init_distribution,
                  output_init=output_init, input_batch_norm=input_batch_norm,
                  batch_norm=batch_norm, bn_momentum=float(bn_momentum),
                  bn_epsilon=float(bn_epsilon), dropout=dropout, dropout_kind=dropout_kind,
                  dropout_top_k=int(dropout_top_k), input_dropout=input_dropout,
                  leaky_slope=float(leaky_slope))
    if kind == "cnn":
        config.update(kind="cnn", conv=conv)

    model = nn.Sequential()
    features = math.prod(shape)
    drop_kind = "alpha" if dropout_kind == "auto" and activation == "selu" else \
        ("standard" if dropout_kind == "auto" else dropout_kind)
    if kind == "cnn":
        if input_dropout > 0:
            model.add_module("input_dropout", make_dropout(input_dropout, drop_kind))
        features = build_cnn_layers(model, shape, conv, activation=activation, init=init_name,
                                    init_distribution=init_distribution, batch_norm=batch_norm,
                                    bn_momentum=bn_momentum, bn_epsilon=bn_epsilon,
                                    leaky_slope=leaky_slope)
    else:
        if len(shape) > 1:
            model.add_module("flatten", nn.Flatten())
        if input_batch_norm:
            model.add_module("input_bn", nn.BatchNorm1d(features, eps=bn_epsilon,
                                                        momentum=round(1.0 - bn_momentum, 15)))
        if input_dropout > 0:
            model.add_module("input_dropout", make_dropout(input_dropout, drop_kind))
    n = len(hidden)
    for i, units in enumerate(hidden, start=1):
        in_top_k = dropout_top_k == 0 or i > n - dropout_top_k
        model.add_module(f"hidden{i}", dense_block(
            features, units, activation=activation, init=init_name,
            init_distribution=init_distribution, batch_norm=batch_norm,
            bn_momentum=bn_momentum, bn_epsilon=bn_epsilon,
            dropout=dropout if in_top_k else 0.0, dropout_kind=drop_kind,
            leaky_slope=leaky_slope))
        features = units
    output = nn.Linear(features, n_outputs)
    # Logits have no activation: "auto" means glorot there (Table 11-1, "none").
    out_init = output_init if output_init != "same" else ("auto" if init == "auto" else init_name)
    initialize_linear(output, out_init, init_distribution, None)
    model.add_module("output", output)
    model.trainwell_config = config
    return model


def build_cnn(*, input_shape: Sequence[int], n_outputs: int,
              conv: Sequence[Any] = ([32, 3], [32, 3], "pool", [64, 3], [64, 3], "pool"),
              hidden: Sequence[int] = (128,), **kwargs: Any) -> nn.Sequential:
    """A convolutional network that outputs logits: ``build_model(kind="cnn", ...)``.

    Children: ``unsqueeze`` (for (H, W) inputs), ``conv1`` … (each an ``nn.Sequential`` of
    ``conv``, ``bn``, ``act`` as in :func:`~trainwell.nn.conv.conv_block`), ``pool1`` …,
    ``flatten``, ``hidden1`` … (dense blocks) and ``output``. Every other keyword of
    :func:`build_model` applies (activation, init, batch_norm, dropout in the dense head, …).

    Example:
        >>> model = build_cnn(input_shape=(28, 28), n_outputs=10, conv=[[8, 3], "pool"],
        ...                   hidden=[16], batch_norm="before")
        >>> [name for name, _ in model.named_children()]
        ['unsqueeze', 'conv1', 'pool1', 'flatten', 'hidden1', 'output']
    """
    return build_model(input_shape=input_shape, n_outputs=n_outputs, kind="cnn",
                       conv=list(conv), hidden=list(hidden), **kwargs)


def _output_init(value: Any) -> str:
    key = value.strip().lower() if isinstance(value, str) else value
    if key in OUTPUT_INITS:
        return key
    if isinstance(key, str) and key in INITIALIZERS:
        return INITIALIZERS.get(key).name
    raise ConfigError("model.output_init", value, [*OUTPUT_INITS, *INITIALIZERS.names()])


def _warn_self_normalization(activation: str, init: str, batch_norm: str, kind: str,
                             has_dropout: bool, input_batch_norm: bool = False) -> None:
    if activation != "selu":
        if has_dropout and kind == "alpha":
            warnings.warn(f"alpha dropout is designed for SELU networks; with {activation} "
                          "use standard dropout (dropout_kind='standard' or 'auto').",
                          SelfNormalizationWarning, stacklevel=3)
        return
    broken = []
    if batch_norm != "none":
        broken.append(f"batch norm ({batch_norm} the activation) replaces self-normalization")
    elif input_batch_norm:
        broken.append("input batch norm rescales the inputs with batch statistics")
    if init != "lecun":
        broken.append(f"the init is {init}, not lecun")
    if has_dropout and kind == "standard":
        broken.append("standard dropout shifts the mean and variance (use alpha dropout)")
    if broken:
        warnings.warn("this SELU network will not self-normalize: " + "; ".join(broken)
                      + ". Use lecun init, no batch norm, alpha dropout and standardized inputs.",
                      SelfNormalizationWarning, stacklevel=3)


def check_self_normalizing_inputs(model: nn.Module, x: torch.Tensor, *, tol: float = 0.1) -> bool:
    """Warn when a SELU model gets inputs that are not standardized; True when all is well.

    Self-normalization needs inputs with mean 0 and standard deviation 1 per feature. This
    checks the average |mean| and |std − 1| over features against ``tol`` (one host sync;
    call it once before training, not per step). Models without ``nn.SELU`` always pass.

    Example:
        >>> model = build_model(input_shape=3, n_outputs=2, hidden=[4], activation="selu")
        >>> check_self_normalizing_inputs(model, torch.randn(1000, 3))
        True
    """
    if not any(isinstance(m, nn.SELU) for m in model.modules()):
        return True
    flat = x.detach().reshape(len(x), -1).float()
    mean_gap = flat.mean(0).abs().mean()
    std_gap = (flat.std(0) - 1).abs().mean()
    # host sync: once per check, before training starts
    gaps = torch.stack([mean_gap, std_gap]).tolist()
    if gaps[0] <= tol and gaps[1] <= tol:
        return True
    warnings.warn(f"this SELU network will not self-normalize: its inputs are not standardized "
                  f"(mean off 0 by {gaps[0]:.3g}, std off 1 by {gaps[1]:.3g} on average over "
                  "features). Standardize the inputs (data.standardize = true).",
                  SelfNormalizationWarning, stacklevel=2)
    return False
