"""Checks that arrays fit a task and a model, with one sentence per problem."""

from __future__ import annotations

import numpy as np
import torch

from trainwell.errors import DataError

__all__ = ["validate_arrays", "TASK_NAMES"]

TASK_NAMES = ("multiclass", "binary", "multilabel", "regression")


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()  # host sync: validation runs once, before training
    return np.asarray(a)


def _labels_name(where: str) -> str:
    head, _, tail = where.rpartition(".")
    if tail.startswith("x"):
        return f"{head + '.' if head else ''}y{tail[1:]}"
    return f"{where} targets"


def validate_arrays(x, y, *, task: str, n_outputs: int, input_shape, where: str) -> None:
    """Raise one :class:`DataError` sentence naming ``where`` when ``x``/``y`` cannot be used.

    Checks, in order: numeric dtypes; equal lengths; ``x.shape[1:] == input_shape``; no NaN
    or Inf feature (how many, and the first example holding one); targets that fit the task:
    multiclass labels are integers in ``0..n_outputs-1``; binary targets are 0/1; multilabel
    targets are a 0/1 matrix with ``n_outputs`` columns; regression targets are finite with
    ``n_outputs`` columns (1-D when ``n_outputs == 1``).

    Args:
        x, y: numpy arrays or torch tensors.
        task: one of multiclass, binary, multilabel, regression.
        n_outputs: number of model outputs (classes for multiclass).
        input_shape: the per-example feature shape the model takes.
        where: the name used in messages, e.g. ``"data.x_train"`` (labels are then named
            ``"data.y_train"``).

    Example:
        >>> validate_arrays(np.zeros((2, 3)), np.array([0, 5]), task="multiclass",
        ...                 n_outputs=3, input_shape=(3,), where="data.x_train")
        Traceback (most recent call last):
        ...
        trainwell.errors.DataError: data.y_train: 1 label outside 0..2 (first at example 1: 5)
    """
    if task not in TASK_NAMES:
        raise DataError(f"{where}: unknown task {task!r}; expected one of {', '.join(TASK_NAMES)}")
    x, y = _np(x), _np(y)
    yname = _labels_name(where)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric, got dtype {x.dtype}")
    if y.dtype.kind not in "biuf":
        raise DataError(f"{yname}: targets must be numeric, got dtype {y.dtype}")
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise DataError(f"{where}: {len(x) if x.ndim else 'a scalar'} examples but {yname} has "
                        f"{len(y) if y.ndim else 'a scalar'}; they must have the same length")
    shape = tuple(int(s) for s in input_shape)
    if tuple(x.shape[1:]) != shape:
        hint = ""
        if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            hint = " (same number of features: reshape, or set data.flatten)"
        raise DataError(f"{where}: each example has shape {tuple(x.shape[1:])} but the model "
                        f"takes {shape}{hint}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        n_bad = int(bad.sum())
        if n_bad:
            first = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
            raise DataError(f"{where}: {n_bad} feature value{'s' if n_bad > 1 else ''} "
                            f"{'are' if n_bad > 1 else 'is'} NaN or Inf (first at example {first})")
    _validate_targets(y, task=task, n_outputs=n_outputs, name=yname)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask.reshape(len(mask), -1).any(axis=1)))


def _validate_targets(y: np.ndarray, *, task: str, n_outputs: int, name: str) -> None:
    if task == "multiclass":
        if y.ndim != 1:
            raise DataError(f"{name}: multiclass labels must be 1-D class indices, got shape {y.shape}")
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{name}: multiclass labels must be integers, got non-integer floats")
        out = (y < 0) | (y >= n_outputs)
        if out.any():
            i = _first(out)
            n = int(out.sum())
            raise DataError(f"{name}: {n} label{'s' if n > 1 else ''} outside 0..{n_outputs - 1} "
                            f"(first at example {i}: {y[i]})")
        return
    if task in ("binary", "multilabel"):
        want = (len(y),) if task == "binary" and n_outputs == 1 else (len(y), n_outputs)
        if task == "binary" and y.ndim == 2 and y.shape == (len(y), 1):
            want = y.shape
        if y.shape != want:
            raise DataError(f"{name}: {task} targets must have shape {want}, got {y.shape}")
        out = ~np.isin(y, (0, 1))
        if out.any():
            i = _first(out)
            raise DataError(f"{name}: {task} targets must be 0 or 1, found "
                            f"{y.reshape(len(y), -1)[i][out.reshape(len(y), -1)[i]][0]} "
                            f"at example {i}")
        return
    want = (len(y),) if n_outputs == 1 and y.ndim == 1 else (len(y), n_outputs)
    if y.shape != want:
        raise DataError(f"{name}: regression targets must have shape {want}, got {y.shape}")
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} regression targets are NaN or Inf "
                        f"(first at example {_first(bad)})")
