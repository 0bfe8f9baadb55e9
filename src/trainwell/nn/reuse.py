"""Reusing pretrained layers: take a trained network's lower blocks under a new head, freeze and
unfreeze blocks (Keras's ``trainable = False``, frozen batch norm in inference mode), and fit
inputs to the size the network expects.

A *block* is a child of the model that holds parameters: ``hidden1`` … ``hiddenN`` and
``output`` for a :func:`~trainwell.nn.build_model` network, the ``nn.Linear`` children of a
plain ``nn.Sequential``. The last block is the *head*; the others are the *hidden blocks*.
Fine-tuning in two phases is :func:`trainwell.workflows.transfer.fine_tune`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.nn.surgery import head_features, truncated_config

__all__ = [
    "blocks", "hidden_blocks", "reuse_layers", "freeze", "unfreeze", "frozen_blocks",
    "trainable_parameters", "make_trainable_optimizer", "expected_input_shape",
    "check_input_shape", "resize_images", "load_source_model",
]

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_FROZEN_FLAG = "_trainwell_frozen"


# -- blocks --------------------------------------------------------------------------------------
def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The children of ``model`` that hold parameters, bottom to top; the last is the head.

    Example:
        >>> from trainwell import build_model
        >>> [n for n, _ in blocks(build_model(input_shape=4, n_outputs=2, hidden=[8, 8]))]
        ['hidden1', 'hidden2', 'output']
    """
    found = [(name, child) for name, child in _unwrap(model).named_children()
             if any(True for _ in child.parameters())]
    if not found:
        raise ConfigError("model", type(model).__name__, "a model with trainable layers")
    return found


def hidden_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """:func:`blocks` without the head (the layers transfer learning reuses)."""
    return blocks(model)[:-1]


def _block_names(model: nn.Module) -> list[str]:
    return [name for name, _ in blocks(model)]


# -- reuse -----------------------------------------------------------------------------------------
def load_source_model(source: nn.Module | str | os.PathLike) -> nn.Module:
    """A model object from a module, a run directory (its ``model/``) or a saved-model folder."""
    if isinstance(source, nn.Module):
        return source
    from trainwell.nn.io import INFO_FILE, load_model

    path = Path(source)
    if (path / "model" / INFO_FILE).is_file():
        path = path / "model"
    if not (path / INFO_FILE).is_file():
        raise DataError(f"{source} is neither a run directory (with model/{INFO_FILE}) nor a "
                        f"saved model folder (with {INFO_FILE}); give the folder a trainwell "
                        "run wrote, e.g. runs/20260101-120000-model_a")
    return load_model(path)


def _clone(model: nn.Module) -> nn.Module:
    try:
        from trainwell.nn.io import clone_model
    except ImportError:  # pragma: no cover - nn is part of the package
        return copy.deepcopy(_unwrap(model))
    return clone_model(model)


def _last_linear_width(modules: Iterable[nn.Module]) -> int | None:
    width = None
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                width = sub.out_features
    return width


def reuse_layers(source: nn.Module | str | os.PathLike, n_outputs: int,
                 task: str = "multiclass", reuse: int | None = None) -> nn.Sequential:
    """A new network: the source's lower layers (copied) plus a fresh output layer.

    Like the chapter's ``keras.Sequential(model_A.layers[:-1])`` + ``Dense(1)``, but on a clone:
    the source keeps its weights whatever happens to the new network.

    Args:
        source: an ``nn.Sequential`` (a :func:`~trainwell.nn.build_model` network or a plain
            stack of layers), a run directory or a saved-model folder.
        n_outputs: output units of the new task (classes, or 1 for binary/regression).
        task: the new task (``multiclass``, ``binary``, ``multilabel``, ``regression``); it is
            recorded in the new network's config. Default ``"multiclass"``.
        reuse: how many hidden blocks to keep, counted from the bottom; ``None`` (default)
            keeps all of them (everything but the output layer).

    Returns:
        an ``nn.Sequential`` with the kept children under their names and a new ``output``
        ``nn.Linear`` (glorot init, zero bias, as Keras's ``Dense``). A builder network's
        ``trainwell_config`` is carried over with the new ``n_outputs``, ``task`` and
        ``hidden`` so :func:`~trainwell.nn.save_model` / ``load_model`` work on the result.
        ``model.trainwell_transfer`` records the reused blocks.

    Raises:
        ConfigError: ``reuse`` outside 1..(number of hidden blocks), bad ``n_outputs``, a
            source that is not an ``nn.Sequential``.

    Example:
        >>> model_b = reuse_layers(model_a, n_outputs=1, task="binary")       # doctest: +SKIP
        >>> model_b2 = reuse_layers(model_a, n_outputs=1, task="binary", reuse=2)  # doctest: +SKIP
    """
    from trainwell.nn.init import initialize_linear

    model = load_source_model(source)
    if not isinstance(_unwrap(model), nn.Sequential):
        raise ConfigError("transfer.source", type(model).__name__,
                          "an nn.Sequential (a trainwell builder network or a stack of layers)")
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
        raise ConfigError("transfer.n_outputs", n_outputs, "a positive integer")
    hidden = hidden_blocks(model)
    n_hidden = len(hidden)
    if n_hidden == 0:
        raise ConfigError("transfer.source", type(model).__name__,
                          "a network with at least one hidden layer below its output layer")
    if reuse is None:
        k = n_hidden
    elif isinstance(reuse, bool) or not isinstance(reuse, int) or not 1 <= reuse <= n_hidden:
        raise ConfigError("transfer.reuse", reuse,
                          f"an integer from 1 to {n_hidden} (hidden layers of the source), "
                          "or None for all")
    else:
        k = reuse

    clone = _clone(model)
    children = list(clone.named_children())
    names = [name for name, _ in blocks(clone)]
    cut = next(i for i, (name, _) in enumerate(children) if name == names[k])
    kept = children[:cut]
    new = nn.Sequential()
    for name, child in kept:
        new.add_module(name, child)
    shape = expected_input_shape(model)
    width = _last_linear_width(m for _, m in kept) if shape is None else \
        _measured_width(new, shape)   # a conv base gets a Flatten and its real width
    if width is None:
        raise ConfigError("transfer.source", type(model).__name__,
                          "a network whose reused layers end with an nn.Linear")
    config = getattr(model, "trainwell_config", None)
    if isinstance(config, dict) and "input_shape" not in config:
        config = None   # a module saved from Python with its factory: no shapes to cut it by
    head = nn.Linear(width, n_outputs)
    if isinstance(config, dict):
        init = config.get("init", "auto")
        initialize_linear(head, "auto" if init == "auto" else init,
                          config.get("init_distribution", "normal"), None)
    else:
        initialize_linear(head, "glorot", "uniform", None)   # Keras Dense default
    ref = next(new.parameters())
    new.add_module("output", head.to(device=ref.device, dtype=ref.dtype))
    if isinstance(config, dict):
        new.trainwell_config = _truncated_config(config, k, n_outputs, task)
    new.trainwell_transfer = {"reused": [n for n, _ in hidden[:k]], "reuse": k,
                              "source_blocks": names}
    new.train(model.training)
    return new


def _measured_width(new: nn.Sequential, shape: Sequence[int]) -> int:
    width, flat = head_features(new, shape)
    if flat:
        new.add_module("flatten", nn.Flatten())
    return width


def _truncated_config(config: dict[str, Any], k: int, n_outputs: int, task: str
                      ) -> dict[str, Any]:
    if config.get("kind") in ("cnn", "module"):   # conv blocks first, or your factory's
        cfg, k = truncated_config(config, k, n_outputs, task)
        if k == 0:
            return cfg
    else:
        cfg = dict(config)
    n = len(cfg.get("hidden", []))
    cfg.update(n_outputs=int(n_outputs), task=task, hidden=list(cfg.get("hidden", []))[:k])
    top = int(cfg.get("dropout_top_k", 0) or 0)
    if top > 0 and k < n:
        # Dropout sat in the source's top `top` hidden layers: keep it where it was.
        new_top = k - (n - top)
        if new_top <= 0:
            cfg.update(dropout=0.0, dropout_top_k=0)
        else:
            cfg["dropout_top_k"] = new_top
    return cfg


# -- freeze / unfreeze ----------------------------------------------------------------------------
def _keep_bn_in_eval(module: nn.Module, inputs: Any) -> None:
    # Forward pre-hook: runs before every call, so it wins over any later model.train().
    if getattr(module, _FROZEN_FLAG, False):
        module.training = False


def _set_block_frozen(block: nn.Module, frozen: bool, model_training: bool) -> None:
    for p in block.parameters():
        p.requires_grad_(not frozen)
    for sub in block.modules():
        if isinstance(sub, _BN_TYPES):
            if not getattr(sub, "_trainwell_bn_hook", False):
                sub.register_forward_pre_hook(_keep_bn_in_eval)
                sub._trainwell_bn_hook = True
            setattr(sub, _FROZEN_FLAG, frozen)
            sub.training = False if frozen else model_training


def _named(model: nn.Module, field_name: str, names: Sequence[str] | str) -> list[str]:
    every = _block_names(model)
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ConfigError(f"{field_name}.names", unknown[0] if len(unknown) == 1 else unknown,
                          every)
    return names


def _check_top_k(field_name: str, top_k: object, n_hidden: int, allow_all: bool) -> int | str:
    if allow_all and isinstance(top_k, str) and top_k.strip().lower() == "all":
        return "all"
    if isinstance(top_k, str) and top_k.strip().isdigit():
        top_k = int(top_k.strip())
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= n_hidden:
        accepted = f"an integer from 0 to {n_hidden} (hidden layers below the output)"
        raise ConfigError(field_name, top_k, accepted + (' or "all"' if allow_all else ""))
    return top_k


def freeze(model: nn.Module, top_k: int | None = None, *,
           names: Sequence[str] | str | None = None) -> list[str]:
    """Freeze hidden blocks (Keras ``trainable = False``); return the names now frozen.

    Frozen parameters get ``requires_grad = False``; batch-norm layers inside them stay in
    inference mode while training (see the module docstring). Rebuild the optimizer after
    freezing (:func:`make_trainable_optimizer`) so that frozen parameters carry no state.

    Args:
        model: the network (see :func:`blocks`).
        top_k: hidden blocks left trainable, counted from the top; ``None``/``0`` (default)
            freezes every hidden block, so only the output layer trains (the chapter's phase 1).
        names: freeze exactly these blocks instead (e.g. ``["hidden1", "hidden2"]``).

    Example:
        >>> freeze(model)                    # doctest: +SKIP
        ['hidden1', 'hidden2', 'hidden3']
        >>> freeze(model, top_k=1)           # hidden3 and the head stay trainable  # doctest: +SKIP
        ['hidden1', 'hidden2']
    """
    hidden = [n for n, _ in hidden_blocks(model)]
    if names is not None:
        picked = _named(model, "freeze", names)
    else:
        k = 0 if top_k is None else int(_check_top_k("freeze.top_k", top_k, len(hidden), False))
        picked = hidden[:len(hidden) - k]
    training = _unwrap(model).training
    by_name = dict(blocks(model))
    for name in picked:
        _set_block_frozen(by_name[name], True, training)
    return frozen_blocks(model)


def unfreeze(model: nn.Module, top_k: int | str | None = "all", *,
             names: Sequence[str] | str | None = None) -> list[str]:
    """Make frozen blocks trainable again; return the names still frozen.

    Args:
        model: the network (see :func:`blocks`).
        top_k: ``"all"``/``None`` (default) unfreezes every block; an integer k unfreezes the
            top k hidden blocks (the chapter: "unfreeze one or two top hidden layers").
        names: unfreeze exactly these blocks instead.

    Example:
        >>> unfreeze(model, top_k=1)         # doctest: +SKIP
        ['hidden1', 'hidden2']
    """
    hidden = [n for n, _ in hidden_blocks(model)]
    if names is not None:
        picked = _named(model, "unfreeze", names)
    else:
        k = "all" if top_k is None else _check_top_k("unfreeze.top_k", top_k, len(hidden), True)
        picked = _block_names(model) if k == "all" else hidden[len(hidden) - int(k):]
    training = _unwrap(model).training
    by_name = dict(blocks(model))
    for name in picked:
        _set_block_frozen(by_name[name], False, training)
    return frozen_blocks(model)


_unfreeze = unfreeze   # fine_tune's `unfreeze` argument shadows the function


def frozen_blocks(model: nn.Module) -> list[str]:
    """Names of the blocks whose parameters are all frozen."""
    return [name for name, block in blocks(model)
            if not any(p.requires_grad for p in block.parameters())]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad`` (what an optimizer should get)."""
    return [p for p in model.parameters() if p.requires_grad]


def make_trainable_optimizer(model: nn.Module, name: str = "sgd", *, lr: float = 0.01,
                             **params: Any) -> torch.optim.Optimizer:
    """An optimizer over the trainable parameters only: frozen ones never get state.

    Args:
        model: the network.
        name: an optimizer of ``trainwell.optim.OPTIMIZERS`` (default ``"sgd"``).
        lr: learning rate (default 0.01).
        **params: other :func:`~trainwell.optim.make_optimizer` hyperparameters.

    Example:
        >>> freeze(model); opt = make_trainable_optimizer(model, "sgd", lr=1e-3)  # doctest: +SKIP
    """
    from trainwell.optim import make_optimizer

    params_ = trainable_parameters(model)
    if not params_:
        raise ConfigError("transfer.unfreeze", "nothing", "at least one trainable layer "
                          "(every layer of the model is frozen)")
    return make_optimizer(params_, name, lr=lr, **params)


# -- input sizes -----------------------------------------------------------------------------------
def expected_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The per-sample input shape the network expects (builder config, else the first Linear)."""
    config = getattr(_unwrap(model), "trainwell_config", None)
    if isinstance(config, dict) and config.get("input_shape") is not None:
        shape = config["input_shape"]
        return tuple(int(d) for d in ([shape] if isinstance(shape, int) else shape))
    for sub in _unwrap(model).modules():
        if isinstance(sub, nn.Linear):
            return (sub.in_features,)
    return None


def resize_images(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a batch of images (N, H, W) or (N, C, H, W) to ``size`` = (H', W') or (C, H', W').

    Bilinear interpolation (``torch.nn.functional.interpolate``); a single-channel batch is
    repeated to C channels and a multi-channel one averaged to one channel when asked.
    """
    size = tuple(int(s) for s in size)
    if len(size) not in (2, 3) or x.dim() not in (3, 4):
        raise DataError(f"cannot resize inputs of shape {tuple(x.shape[1:])} to {size}: only "
                        "images (H, W) or (C, H, W) can be resized")
    squeeze = x.dim() == 3
    img = x.unsqueeze(1) if squeeze else x
    out = F.interpolate(img.float(), size=size[-2:], mode="bilinear", align_corners=False)
    if len(size) == 3:
        c = size[0]
        if out.shape[1] != c:
            if out.shape[1] == 1:
                out = out.expand(-1, c, -1, -1).contiguous()
            elif c == 1:
                out = out.mean(dim=1, keepdim=True)
            else:
                raise DataError(f"cannot turn {out.shape[1]} channels into {c}")
        return out
    return out.squeeze(1) if out.shape[1] == 1 else out.mean(dim=1)


def check_input_shape(model: nn.Module, x: torch.Tensor, *, resize: bool = False,
                      where: str = "data") -> torch.Tensor:
    """Return ``x`` fitted to the network's input, or raise a DataError saying what it expects.

    Samples with the same number of features (e.g. 784 flat vs 28×28) are accepted as they
    are. With ``resize=True`` images of another size are resized (bilinear) to the input size
    of the source network, as the chapter recommends.

    Raises:
        DataError: the shapes differ and ``resize`` is off (or the inputs are not images).
    """
    expected = expected_input_shape(model)
    got = tuple(x.shape[1:])
    if expected is None or got == expected or math.prod(got) == math.prod(expected):
        return x
    if not resize:
        raise DataError(
            f"{where}: the source network expects inputs of shape {expected} "
            f"({math.prod(expected)} features) but the new data has shape {got} "
            f"({math.prod(got)} features); resize the images to {expected} "
            "(resize=True, or --resize on the command line) or reuse a network trained on "
            "this input size")
    if len(expected) == 1:
        raise DataError(f"{where}: the source network expects flat inputs of {expected[0]} "
                        f"features; inputs of shape {got} cannot be resized to that "
                        "(resizing needs an image-shaped source, e.g. (28, 28))")
    return resize_images(x, expected)


# -- two-phase fine-tuning -------------------------------------------------------------------------
