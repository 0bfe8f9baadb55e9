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
    ...                     lr=1e-3, lr_factor=1.0, validation_data=(x_val, y_val))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.checks import is_number, positive
from trainwell.errors import ConfigError
from trainwell.nn.reuse import (  # noqa: F401 - trainwell.transfer keeps every name
    _check_top_k,
    _unfreeze,
    _unwrap,
    blocks,
    check_input_shape,
    expected_input_shape,
    freeze,
    frozen_blocks,
    hidden_blocks,
    load_source_model,
    make_trainable_optimizer,
    resize_images,
    reuse_layers,
    trainable_parameters,
    unfreeze,
)

__all__ = [
    "blocks", "hidden_blocks", "reuse_layers", "freeze", "unfreeze", "frozen_blocks",
    "trainable_parameters", "make_trainable_optimizer", "expected_input_shape",
    "check_input_shape", "resize_images", "fine_tune", "FineTuneResult", "fine_tune_trainers",
    "load_source_model", "plot_fine_tune", "check_phases",
]

@dataclass
class FineTuneResult:
    """What :func:`fine_tune_trainers` returns: the history of both phases and the trainer
    (``trainers``: a list of one — both phases are one run)."""

    history: Any
    trainers: list[Any] = field(default_factory=list)
    phase_switch_epoch: int = 0


def _history_rows(history: Any) -> list[dict[str, Any]]:
    rows = getattr(history, "epochs", history)
    return [dict(r) for r in rows]




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
    lr = positive("optimizer.lr", lr)
    lr_factor = positive("transfer.lr_factor", lr_factor)
    if lr_factor > 1:
        raise ConfigError("transfer.lr_factor", lr_factor,
                          "a number in (0, 1]: phase 2 trains with lr × lr_factor")
    return lr, lr_factor


def fine_tune_trainers(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                       frozen_epochs: int = 4, epochs: int = 20, lr: float = 1e-3,
                       lr_factor: float = 1.0, unfreeze: int | str = "all",
                       validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
                       optimizer: str = "sgd", optimizer_params: dict[str, Any] | None = None,
                       task: str | None = None, batch_size: int = 32, callbacks: Sequence = (),
                       unfrozen_callbacks: Sequence = (), seed: int = 0, device: str = "auto",
                       resize: bool = False, **trainer_kwargs: Any) -> FineTuneResult:
    """:func:`fine_tune`, returning the trainer too (for run directories)."""
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

    from trainwell.train import Trainer, Unfreeze

    opt_params = dict(optimizer_params or {})

    def new_optimizer(net: nn.Module, phase_lr: float) -> torch.optim.Optimizer:
        # Over the trainable parameters only, as Keras re-compiles for each phase.
        return make_trainable_optimizer(net, optimizer, lr=phase_lr, **opt_params)

    # One run: the reused layers frozen for `frozen_epochs` epochs, then unfrozen (a new
    # optimizer at lr × lr_factor, seed + 1 for a new batch order, the schedule restarted).
    if frozen_epochs > 0:
        freeze(model)
    switch = Unfreeze(frozen_epochs, unfreeze, lr_factor, optimizer=new_optimizer,
                      seed=seed + 1, callbacks=unfrozen_callbacks)
    trainer = Trainer(model, task=task, optimizer=new_optimizer(model, lr), lr=lr,
                      callbacks=[*callbacks, switch], seed=seed, device=device,
                      **trainer_kwargs)
    trainer.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                verbose=0)
    return FineTuneResult(history=trainer.history, trainers=[trainer],
                          phase_switch_epoch=frozen_epochs if epochs > frozen_epochs else 0)


def fine_tune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, frozen_epochs: int = 4,
              epochs: int = 20, lr: float = 1e-3, lr_factor: float = 1.0,
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
        lr_factor: phase 2 learning rate = ``lr × lr_factor``, in (0, 1] (default 1: keep the
            rate; the chapter's 3rd edition lowers it 10×, which its 112 phase-2 SGD steps
            cannot afford: B on A then falls far below B from scratch).
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
            xs = [r["epoch"] for r in rows if is_number(r.get(prefix + key))]
            ys = [r[prefix + key] for r in rows if is_number(r.get(prefix + key))]
            if xs:
                ax.plot(xs, ys, style, marker="o", markersize=3,
                        label=("validation " if prefix else "train ") + key)
        if baseline is not None:
            base = _history_rows(baseline)
            for prefix in ("", "val_"):
                pts = [(r.get("epoch", j + 1), r[prefix + key]) for j, r in enumerate(base)
                       if is_number(r.get(prefix + key))]
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
    if frozen and unfrozen and is_number(frozen[-1]) and is_number(unfrozen[0]) and frozen[-1] > 0:
        return f"{unfrozen[0] / frozen[-1]:.3g}"
    return "factor"
