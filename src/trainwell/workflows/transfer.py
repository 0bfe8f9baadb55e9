"""Transfer learning: reuse a trained network's lower layers, freeze, unfreeze, fine-tune.

The chapter's recipe (Géron, *Hands-On Machine Learning*, ch. 11, "Reusing Pretrained Layers"), as one API:

1. take all but the output layer of a trained network (or its first k hidden layers) and put
   a fresh output layer for the new task on top — on a *clone*, so the source network is never
   changed (Keras users had to ``clone_model`` + ``set_weights`` by hand for that);
2. freeze the reused layers and train the new head for a few epochs, so that the large
   gradients of a random head do not wreck the reused weights;
3. unfreeze the reused layers (all, or the top one or two) and keep training with a learning
   rate reduced by a factor, "thus the fine-tuned weights on the lower layers will not change
   significantly".

:func:`fine_tune` does 2 and 3 as one call and returns one history with a ``phase`` column.

A *block* is a child of the model that holds parameters: ``hidden1`` … ``hiddenN`` and
``output`` for a :func:`~trainwell.nn.build_model` network, the ``nn.Linear`` children of a
plain ``nn.Sequential``. The last block is the *head*; the others are the *hidden blocks*.

Freezing follows Keras's ``layer.trainable = False``: the parameters get ``requires_grad =
False`` and batch-norm layers inside a frozen block run in inference mode (running statistics
used, not updated) even while the rest of the model trains. Keras does the same since TF 2.0
because updating the statistics of a frozen BN layer on the small new dataset would shift
what every layer above it sees and undo the reuse.

Example:
    >>> new = reuse_layers(model_a, n_outputs=1, task="binary")        # doctest: +SKIP
    >>> history = fine_tune(new, x_b, y_b, frozen_epochs=4, epochs=20,   # doctest: +SKIP
    ...                     lr=1e-3, lr_factor=0.1, validation_data=(x_val, y_val))
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainwell.errors import ConfigError, DataError

__all__ = [
    "blocks", "hidden_blocks", "reuse_layers", "freeze", "unfreeze", "frozen_blocks",
    "trainable_parameters", "make_trainable_optimizer", "expected_input_shape",
    "check_input_shape", "resize_images", "fine_tune", "FineTuneResult", "fine_tune_trainers",
    "load_source_model", "plot_fine_tune", "check_phases",
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
    width = _last_linear_width(m for _, m in kept)
    if width is None:
        raise ConfigError("transfer.source", type(model).__name__,
                          "a network whose reused layers end with an nn.Linear")
    new = nn.Sequential()
    for name, child in kept:
        new.add_module(name, child)
    config = getattr(model, "trainwell_config", None)
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


def _truncated_config(config: dict[str, Any], k: int, n_outputs: int, task: str
                      ) -> dict[str, Any]:
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
@dataclass
class FineTuneResult:
    """What :func:`fine_tune_trainers` returns: the combined history and both trainers."""

    history: Any
    trainers: list[Any] = field(default_factory=list)
    phase_switch_epoch: int = 0


def _history_rows(history: Any) -> list[dict[str, Any]]:
    rows = getattr(history, "epochs", history)
    return [dict(r) for r in rows]


def _combined_history(parts: list[tuple[str, Any]]) -> Any:
    from trainwell.train.history import History

    rows: list[dict[str, Any]] = []
    step_offset = 0
    for phase, history in parts:
        last_steps = 0
        for row in _history_rows(history):
            row["phase"] = phase
            if isinstance(row.get("steps"), int):
                last_steps = row["steps"]
                row["steps"] = row["steps"] + step_offset
            rows.append(row)
        step_offset += last_steps
    for i, row in enumerate(rows, start=1):
        row["epoch"] = i
    return History(rows)


def _positive(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ConfigError(field_name, value, "a number > 0")
    return float(value)


def check_phases(frozen_epochs: int, epochs: int, lr: float, lr_factor: float
                 ) -> tuple[float, float]:
    """Check the two-phase schedule of :func:`fine_tune`; returns ``(lr, lr_factor)``.

    Raises:
        ConfigError: frozen epochs < 0, total epochs < 1 or < frozen epochs, lr ≤ 0, or
            lr_factor outside (0, 1].
    """
    if isinstance(frozen_epochs, bool) or not isinstance(frozen_epochs, int) or frozen_epochs < 0:
        raise ConfigError("transfer.frozen_epochs", frozen_epochs, "an integer >= 0")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < frozen_epochs \
            or epochs < 1:
        raise ConfigError("train.epochs", epochs,
                          f"an integer >= 1 and >= frozen_epochs ({frozen_epochs}): the total "
                          "of both phases")
    lr = _positive("optimizer.lr", lr)
    lr_factor = _positive("transfer.lr_factor", lr_factor)
    if lr_factor > 1:
        raise ConfigError("transfer.lr_factor", lr_factor,
                          "a number in (0, 1]: phase 2 trains with lr × lr_factor")
    return lr, lr_factor


def fine_tune_trainers(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                       frozen_epochs: int = 4, epochs: int = 20, lr: float = 1e-3,
                       lr_factor: float = 0.1, unfreeze: int | str = "all",
                       validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
                       optimizer: str = "sgd", optimizer_params: dict[str, Any] | None = None,
                       task: str | None = None, batch_size: int = 32, callbacks: Sequence = (),
                       unfrozen_callbacks: Sequence = (), seed: int = 0, device: str = "auto",
                       resize: bool = False, **trainer_kwargs: Any) -> FineTuneResult:
    """:func:`fine_tune`, returning the trainers of both phases too (for run directories)."""
    lr, lr_factor = check_phases(frozen_epochs, epochs, lr, lr_factor)
    n_hidden = len(hidden_blocks(model))
    unfreeze = _check_top_k("transfer.unfreeze", unfreeze, n_hidden, allow_all=True)
    x = check_input_shape(model, x, resize=resize, where="training data")
    if validation_data is not None:
        xv, yv = validation_data
        validation_data = (check_input_shape(model, xv, resize=resize, where="validation data"),
                           yv)
    if task is None:
        config = getattr(_unwrap(model), "trainwell_config", None) or {}
        task = config.get("task", "multiclass")

    from trainwell.train import Trainer

    opt_params = dict(optimizer_params or {})

    def run_phase(phase_lr: float, n_epochs: int, phase_seed: int, extra: Sequence = ()) -> Any:
        # A new optimizer per phase over the trainable parameters only (Keras re-compiles).
        opt = make_trainable_optimizer(model, optimizer, lr=phase_lr, **opt_params)
        trainer = Trainer(model, task=task, optimizer=opt, lr=phase_lr,
                          callbacks=[*callbacks, *extra], seed=phase_seed, device=device,
                          **trainer_kwargs)
        trainer.fit(x, y, epochs=n_epochs, batch_size=batch_size,
                    validation_data=validation_data)
        return trainer

    parts: list[tuple[str, Any]] = []
    trainers = []
    if frozen_epochs > 0:
        freeze(model)                       # phase 1: only the new head trains
        trainer = run_phase(lr, frozen_epochs, seed)
        trainers.append(trainer)
        parts.append(("frozen", trainer.history))
    second = epochs - frozen_epochs
    if second > 0 and not (trainers and trainers[-1].stop_training):
        freeze(model)
        if unfreeze == "all" or unfreeze > 0:
            _unfreeze(model, unfreeze)
        trainer = run_phase(lr * lr_factor, second, seed + 1, unfrozen_callbacks)
        trainers.append(trainer)
        parts.append(("unfrozen", trainer.history))
    history = _combined_history(parts)
    return FineTuneResult(history=history, trainers=trainers,
                          phase_switch_epoch=frozen_epochs if second > 0 else 0)


def fine_tune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, frozen_epochs: int = 4,
              epochs: int = 20, lr: float = 1e-3, lr_factor: float = 0.1,
              unfreeze: int | str = "all",
              validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
              optimizer: str = "sgd", optimizer_params: dict[str, Any] | None = None,
              task: str | None = None, batch_size: int = 32, callbacks: Sequence = (),
              unfrozen_callbacks: Sequence = (), seed: int = 0, device: str = "auto",
              resize: bool = False, **trainer_kwargs: Any) -> Any:
    """Two-phase transfer training as one call; returns one History with a ``phase`` column.

    Phase 1 (``"frozen"``): every hidden block is frozen and the head trains for
    ``frozen_epochs`` epochs at ``lr``. Phase 2 (``"unfrozen"``): the chosen blocks are
    unfrozen and training goes on for ``epochs − frozen_epochs`` epochs at
    ``lr × lr_factor``. Each phase gets a new optimizer over the trainable parameters only (as
    Keras's re-``compile``), so frozen parameters never hold optimizer state. The chapter:
    4 epochs frozen at η = 1e-3, then 16 epochs unfrozen at η = 1e-4.

    Args:
        model: the network with a new head (see :func:`reuse_layers`); trained in place.
        x, y: training inputs and targets (tensors).
        frozen_epochs: epochs of phase 1 (default 4; 0 skips it).
        epochs: total epochs of both phases (default 20).
        lr: learning rate of phase 1 (default 1e-3).
        lr_factor: phase 2 learning rate = ``lr × lr_factor``, in (0, 1] (default 0.1).
        unfreeze: ``"all"`` (default) or the number k of top hidden blocks to unfreeze.
        validation_data: ``(x_val, y_val)`` or ``None``.
        optimizer: optimizer name (default ``"sgd"``); ``optimizer_params`` its other
            hyperparameters (e.g. ``{"momentum": 0.9}``).
        task: the task; default: the model's ``trainwell_config["task"]``, else multiclass.
        batch_size: mini-batch size (default 32, as Keras).
        callbacks: callbacks given to the trainer of each phase.
        unfrozen_callbacks: callbacks of phase 2 only, e.g. ``EarlyStopping`` (stopping the
            short frozen phase early would skip fine-tuning altogether).
        seed: random seed of phase 1; phase 2 uses ``seed + 1`` (new batch order).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` …
        resize: resize images of another size to the network's input size (default off:
            a size mismatch raises a DataError saying what the network expects).
        **trainer_kwargs: anything else :class:`~trainwell.train.Trainer` takes (l2, clipping…).

    Returns:
        History whose rows carry ``phase`` (``"frozen"``/``"unfrozen"``), ``lr`` and epochs
        numbered across both phases.

    Example:
        >>> model_b = reuse_layers(model_a, n_outputs=1, task="binary")          # doctest: +SKIP
        >>> h = fine_tune(model_b, x_b, y_b, frozen_epochs=4, epochs=20, lr=1e-3)  # doctest: +SKIP
        >>> [r["phase"] for r in h.epochs][3:5]                                   # doctest: +SKIP
        ['frozen', 'unfrozen']
    """
    return fine_tune_trainers(
        model, x, y, frozen_epochs=frozen_epochs, epochs=epochs, lr=lr, lr_factor=lr_factor,
        unfreeze=unfreeze, validation_data=validation_data, optimizer=optimizer,
        optimizer_params=optimizer_params, task=task, batch_size=batch_size,
        callbacks=callbacks, unfrozen_callbacks=unfrozen_callbacks, seed=seed, device=device,
        resize=resize, **trainer_kwargs).history


# -- plots ---------------------------------------------------------------------------------------
def plot_fine_tune(history: Any, path: str | os.PathLike, *, metric: str = "accuracy",
                   baseline: Any = None, baseline_label: str = "from scratch",
                   title: str = "Transfer learning: both phases") -> Path:
    """Learning curves of a two-phase run with a vertical line where the layers were unfrozen.

    Args:
        history: the History (or list of rows) from :func:`fine_tune` (rows carry ``phase``).
        path: the PNG to write.
        metric: ``"accuracy"`` (default), ``"loss"`` or another logged metric; train and
            validation values are drawn when present.
        baseline: another history drawn dashed for comparison (e.g. the same task from
            scratch), labelled ``baseline_label``.
        title: the figure title.

    Example:
        >>> plot_fine_tune(history, "runs/x/plots/transfer_phases.png")   # doctest: +SKIP
    """
    from matplotlib.ticker import MaxNLocator

    from trainwell.report.plots import new_figure, save_figure

    rows = _history_rows(history)
    fig, axes = new_figure(10.0, 4.0)
    fig.delaxes(axes)
    for i, key in enumerate(("loss", metric) if metric != "loss" else ("loss",), start=1):
        ax = fig.add_subplot(1, 2 if metric != "loss" else 1, i)
        for prefix, style in (("", "-"), ("val_", "-")):
            xs = [r["epoch"] for r in rows if _finite(r.get(prefix + key))]
            ys = [r[prefix + key] for r in rows if _finite(r.get(prefix + key))]
            if xs:
                ax.plot(xs, ys, style, marker="o", markersize=3,
                        label=("validation " if prefix else "train ") + key)
        if baseline is not None:
            base = _history_rows(baseline)
            for prefix in ("", "val_"):
                pts = [(r.get("epoch", j + 1), r[prefix + key]) for j, r in enumerate(base)
                       if _finite(r.get(prefix + key))]
                if pts:
                    ax.plot(*zip(*pts, strict=True), "--", alpha=0.7,
                            label=f"{baseline_label}: {'validation ' if prefix else 'train '}{key}")
        switch = [r["epoch"] for r in rows if r.get("phase") == "unfrozen"]
        if switch and any(r.get("phase") == "frozen" for r in rows):
            at = switch[0] - 0.5
            ax.axvline(at, color="black", linestyle=":", linewidth=1.2)
            ax.text(at, 1.0, f"  unfrozen, lr × {_lr_factor(rows)}",
                    transform=ax.get_xaxis_transform(), va="top", ha="left", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)


def _lr_factor(rows: list[dict[str, Any]]) -> str:
    """Phase-2 lr ÷ phase-1 lr as logged (e.g. ``"0.1"``), or ``"factor"`` when unknown."""
    frozen = [r.get("lr") for r in rows if r.get("phase") == "frozen"]
    unfrozen = [r.get("lr") for r in rows if r.get("phase") == "unfrozen"]
    if frozen and unfrozen and _finite(frozen[-1]) and _finite(unfrozen[0]) and frozen[-1] > 0:
        return f"{unfrozen[0] / frozen[-1]:.3g}"
    return "factor"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
