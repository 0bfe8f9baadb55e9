"""Turn a :class:`~trainwell.config.Recipe` into data, a model and a trainer.

This is the only place (with :mod:`trainwell.workflows.run`) where recipe sections become keyword
arguments of the lower layers; the field names are the keyword names, so each call is a
plain unpacking of one section.

Example:
    >>> from trainwell.config import resolve
    >>> splits, model, trainer = build_from_recipe(resolve("default"))  # doctest: +SKIP
    >>> trainer.fit(splits.x_train, splits.y_train, epochs=1)            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainwell.config import Recipe
from trainwell.errors import ConfigError

__all__ = [
    "build_from_recipe",
    "load_splits",
    "build_model_from_recipe",
    "build_trainer",
    "dataset_argument",
    "model_kwargs",
    "trainer_kwargs",
    "resolved_task",
    "wants_auto_max_lr",
    "binary_from_two_classes",
    "splits_for_task",
]


#: The convolutional base of ``kind = "cnn"`` when the recipe gives no ``conv``.
DEFAULT_CONV: list = [[32, 3], [32, 3], "pool", [64, 3], [64, 3], "pool"]


def dataset_argument(recipe: Recipe) -> str:
    """What ``load_dataset`` receives: the file for ``npz``/``csv`` datasets, else the name."""
    d = recipe.data
    return d.path if d.dataset in ("npz", "csv", "images", "npy") and d.path else d.dataset


def load_splits(recipe: Recipe, *, progress: bool = True) -> Any:
    """Load the ``[data]`` section's dataset as :class:`trainwell.data.Splits`
    (image folders and ``.npy`` pairs: in memory or streamed, per ``data.stream``)."""
    from trainwell.data import load_dataset

    d = recipe.data
    if d.dataset in ("images", "npy"):
        from trainwell.data.folders import load_folder_dataset

        splits = load_folder_dataset(d.path, validation=d.validation, stratify=d.stratify,
                                     standardize=d.standardize, flatten=d.flatten,
                                     classes=d.classes, train_limit=d.train_limit,
                                     seed=recipe.train.seed, stream=d.stream,
                                     skip_bad=d.skip_bad)
        return splits_for_task(recipe, splits)
    splits = load_dataset(dataset_argument(recipe), validation=d.validation,
                          stratify=d.stratify, standardize=d.standardize, flatten=d.flatten,
                          classes=d.classes, train_limit=d.train_limit, seed=recipe.train.seed,
                          target=d.target, progress=progress)
    return splits_for_task(recipe, splits)


def binary_from_two_classes(splits: Any) -> Any:
    """Two-class multiclass splits as a binary task: one output, float labels ``y == 1``.

    The second class (label 1) is the positive one, as with a 1-unit sigmoid output.

    Example:
        >>> b = binary_from_two_classes(splits)      # doctest: +SKIP
        >>> b.task, b.n_outputs, b.y_train.dtype     # doctest: +SKIP
        ('binary', 1, torch.float32)
    """
    import dataclasses

    import torch

    parts = {f"y_{p}": (getattr(splits, f"y_{p}") == 1).to(torch.float32)
             for p in ("train", "val", "test") if getattr(splits, f"y_{p}", None) is not None}
    return dataclasses.replace(splits, task="binary", n_outputs=1, **parts)


def splits_for_task(recipe: Recipe, splits: Any) -> Any:
    """``splits`` shaped for ``model.task``: a 2-class multiclass dataset with
    ``task = "binary"`` becomes a binary one (:func:`binary_from_two_classes`); anything else
    is returned as it is (so calling this twice is harmless)."""
    if (recipe.model.task == "binary" and getattr(splits, "task", None) == "multiclass"
            and int(getattr(splits, "n_outputs", 0)) == 2):
        return binary_from_two_classes(splits)
    return splits


def resolved_task(recipe: Recipe, splits: Any) -> str:
    """``model.task``, or the dataset's task when it is ``"auto"``."""
    return splits.task if recipe.model.task == "auto" else recipe.model.task


def _task(recipe: Recipe, splits: Any) -> Any:
    """The task's name, or its Task with the recipe's label smoothing when that is on."""
    name = resolved_task(recipe, splits)
    if not recipe.train.label_smoothing:
        return name
    from trainwell.tasks import get_task

    return get_task(name, None if recipe.model.loss == "auto" else recipe.model.loss,
                    label_smoothing=recipe.train.label_smoothing)


def model_kwargs(recipe: Recipe, splits: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`trainwell.nn.build_model` for this recipe and data
    (after :func:`splits_for_task`: a binary task on 2-class data has one output)."""
    m, r = recipe.model, recipe.regularization
    splits = splits_for_task(recipe, splits)
    common = dict(input_shape=tuple(splits.input_shape), n_outputs=int(splits.n_outputs),
                  task=resolved_task(recipe, splits))
    kind = m.network_kind()
    if kind == "module":  # your factory: it gets the shapes and [model.args], nothing else
        return dict(common, kind="module", module=m.module, args=dict(m.args))
    kwargs = dict(common, hidden=list(m.hidden),
                  activation=m.activation, init=m.init, init_distribution=m.init_distribution,
                  output_init=m.output_init, input_batch_norm=m.input_batch_norm,
                  batch_norm=m.batch_norm, bn_momentum=m.bn_momentum, bn_epsilon=m.bn_epsilon,
                  dropout=r.dropout, dropout_kind=r.dropout_kind, dropout_top_k=r.dropout_top_k,
                  input_dropout=r.input_dropout, leaky_slope=m.leaky_slope)
    if kind == "cnn":
        kwargs.update(kind="cnn", conv=list(m.conv) if m.conv is not None else DEFAULT_CONV)
    return kwargs


def build_model_from_recipe(recipe: Recipe, splits: Any) -> Any:
    """The ``[model]`` + ``[regularization]`` network for ``splits`` (seeded by ``train.seed``)."""
    import torch

    from trainwell.nn import build_model
    from trainwell.nn.memory import check_fits_in_memory
    from trainwell.train.trainer import resolve_device

    kwargs = model_kwargs(recipe, splits)
    check_fits_in_memory(lambda: build_model(**kwargs), tuple(kwargs["input_shape"]),
                         recipe.train.batch_size, resolve_device(recipe.train.device),
                         value=list(recipe.model.hidden))
    # the initial weights depend on the seed only, not on what ran before in this process
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.train.seed)
        return build_model(**kwargs)


def wants_auto_max_lr(recipe: Any) -> bool:
    """Whether the recipe asks 1cycle to take its peak rate from the finder (``max_lr = "auto"``)."""
    value = getattr(recipe.schedule, "max_lr", None)
    return isinstance(value, str) and value.strip().lower() == "auto"


def trainer_kwargs(recipe: Recipe, splits: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`trainwell.train.Trainer` (all but model and callbacks)."""
    if wants_auto_max_lr(recipe):  # fit_recipe / compare replace it with the finder's number
        raise ConfigError("schedule.max_lr", "auto", "a number here: resolve \"auto\" first "
                          "with trainwell.workflows.lrfind.resolve_auto_max_lr (`trainwell fit` and "
                          "`trainwell compare` do), or set a number")
    o, s, r, t = recipe.optimizer, recipe.schedule, recipe.regularization, recipe.train
    return dict(
        task=_task(recipe, splits),
        loss=None if recipe.model.loss == "auto" else recipe.model.loss,
        optimizer=o.name, lr=o.lr,
        optimizer_params=dict(momentum=o.momentum, beta_1=o.beta_1, beta_2=o.beta_2, rho=o.rho,
                              epsilon=o.epsilon, weight_decay=o.weight_decay,
                              momentum_form=o.momentum_form),
        schedule=s.name, schedule_params=s.params(),
        clip_value=o.clip_value, clip_norm=o.clip_norm, clip_global_norm=o.clip_global_norm,
        l1=r.l1, l2=r.l2, max_norm=r.max_norm,
        device=t.device, seed=t.seed, compile=t.compile, precision=t.precision,
        sync_batch_norm=recipe.model.sync_batch_norm, metrics=list(t.metrics) or None,
    )


def build_trainer(recipe: Recipe, model: Any, splits: Any, *, callbacks: Sequence[Any] = ()
                  ) -> Any:
    """A :class:`trainwell.train.Trainer` for ``model`` with the recipe's optimization setup."""
    from trainwell.train import Trainer

    trainer = Trainer(model, callbacks=list(callbacks), **trainer_kwargs(recipe, splits))
    a = recipe.augment
    if a.active():  # per training batch, on the device, seeded by the run
        from trainwell.data.augment import Augment
        trainer.augment = Augment(flip=a.flip, crop_padding=a.crop_padding,
                                  noise_std=a.noise_std, seed=recipe.train.seed,
                                  input_shape=tuple(splits.input_shape))
    trainer.workers = data_workers(recipe.data.workers, trainer.device)
    return trainer


def data_workers(workers: int, device: Any) -> int:
    """``data.workers`` resolved: -1 = up to 4 worker processes, none on a 2-core machine."""
    import os

    if workers >= 0:
        return workers
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores // 2)


def build_from_recipe(recipe: Recipe, splits: Any = None, *, model: Any = None,
                      callbacks: Sequence[Any] = (), progress: bool = True) -> tuple[Any, Any, Any]:
    """``(splits, model, trainer)`` for ``recipe``.

    The returned splits are the ones to train on: with ``model.task = "binary"`` a 2-class
    dataset comes back with float 0/1 labels (:func:`splits_for_task`).

    Args:
        recipe: a validated recipe.
        splits: data to use instead of loading ``[data]`` (default None = load it).
        model: any ``nn.Module`` to train instead of building ``[model]`` (default None).
        callbacks: extra :class:`trainwell.train.Callback` objects for the trainer.
        progress: show a download/progress bar while loading data (default True).
    """
    if splits is None:
        splits = load_splits(recipe, progress=progress)
    splits = splits_for_task(recipe, splits)
    if model is None:
        model = build_model_from_recipe(recipe, splits)
    trainer = build_trainer(recipe, model, splits, callbacks=callbacks)
    return splits, model, trainer
