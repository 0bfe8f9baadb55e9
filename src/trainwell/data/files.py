"""User datasets from files: ``.npz`` arrays and ``.csv`` tables, with the task inferred.

Task inference from the targets ``y``:
- integer labels (1-D) → ``multiclass`` with ``n_outputs = max label + 1``;
- a 2-D array of 0/1 values with several columns → ``multilabel``;
- float targets → ``regression`` (``n_outputs`` = number of target columns).
In a CSV, a target column of integer literals is multiclass, of other numbers regression,
and of text class names multiclass with the names sorted alphabetically as class names.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from trainwell.data.raw import RawData
from trainwell.errors import DataError

__all__ = ["infer_task", "load_npz", "load_csv", "MAX_CLASSES"]

#: The most classes a multiclass dataset may have: a larger label is a mistake in the data
#: (a label of 10**9 would make an output layer of a billion units).
MAX_CLASSES = 100_000


def infer_task(y: np.ndarray, *, where: str = "y") -> tuple[str, int]:
    """``(task, n_outputs)`` for targets ``y`` (see the module docstring)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: targets must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] > 1 and y.size and np.isin(y, (0, 1)).all():
        return "multilabel", int(y.shape[1])
    if y.dtype.kind in "biu":
        if y.ndim != 1:
            raise DataError(f"{where}: integer class labels must be 1-D, got shape {y.shape}")
        if y.size and y.min() < 0:
            raise DataError(f"{where}: class labels must be >= 0, found {int(y.min())}")
        _check_class_count(y, where)
        return "multiclass", int(y.max()) + 1 if y.size else 0
    if y.ndim > 2:
        raise DataError(f"{where}: regression targets must be 1-D or 2-D, got shape {y.shape}")
    return "regression", 1 if y.ndim == 1 else int(y.shape[1])


def _check_class_count(y: np.ndarray, where: str) -> None:
    if y.size and int(y.max()) >= MAX_CLASSES:
        raise DataError(f"{where}: largest class label is {int(y.max())}, which would make "
                        f"{int(y.max()) + 1} classes; expected labels 0..n_classes-1 with at "
                        f"most {MAX_CLASSES} classes")


def load_npz(path: str | Path) -> RawData:
    """Arrays ``x``, ``y`` (and optional ``x_test``, ``y_test``) from an ``.npz`` file.

    uint8 features are treated as pixels (scaled by 1/255 before standardization).

    Example:
        >>> np.savez("/tmp/d.npz", x=np.random.rand(10, 3), y=np.arange(10) % 2)  # doctest: +SKIP
        >>> load_npz("/tmp/d.npz").task  # doctest: +SKIP
        'multiclass'
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"data.path: {path} is empty (0 bytes); expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):  # a lone .npy array
                raise ValueError("it holds one array, not named arrays x and y")
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, OSError, ...
        raise DataError(f"data.path: {path} is not a readable .npz file "
                        f"({type(exc).__name__}: {exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"data.path: {path} has no array {key!r} (found {sorted(arrays)}); "
                            "expected arrays x, y and optionally x_test, y_test")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"data.path: {path} must hold both x_test and y_test, or neither")
    x, y = arrays["x"], arrays["y"]
    x_te, y_te = arrays.get("x_test"), arrays.get("y_test")
    for name, a in (("x", x), ("x_test", x_te)):
        if a is not None and (a.ndim < 1 or a.dtype.kind not in "biuf"):
            raise DataError(f"data.path: {path} array {name!r} must be a numeric array of "
                            f"examples, got dtype {a.dtype} with shape {a.shape}")
    if x_te is not None and x_te.shape[1:] != x.shape[1:]:
        raise DataError(f"data.path: {path} array 'x_test' has examples of shape "
                        f"{x_te.shape[1:]} but 'x' has {x.shape[1:]}; they must match")
    task, n_out = infer_task(y, where=f"{path} y")
    if task == "multiclass" and y_te is not None and y_te.dtype.kind in "iu" and y_te.size:
        _check_class_count(y_te, f"{path} y_test")
        n_out = max(n_out, int(y_te.max()) + 1)  # a class may appear only in the test set
    return RawData(name=path.stem, x_train=x, y_train=y, x_test=x_te, y_test=y_te, task=task,
                   n_outputs=n_out, scale=255.0 if x.dtype == np.uint8 else 1.0,
                   source=str(path))


def _is_int_literal(values: np.ndarray) -> bool:
    return bool(np.char.isdigit(np.char.lstrip(values, "+-")).all())


def load_csv(path: str | Path, target: str = "target") -> RawData:
    """A CSV table with a header: numeric feature columns plus the ``target`` column.

    Raises:
        DataError: naming the column (and the first bad row) for a non-numeric feature, or
            listing the columns when ``target`` is not one of them.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise DataError(f"data.path: {path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise DataError(f"data.target: received {target!r}; expected one of the columns of "
                        f"{path}: {', '.join(header)}")
    widths = {len(r) for r in rows[1:]}
    if widths != {len(header)}:
        bad = next(i for i, r in enumerate(rows[1:], start=2) if len(r) != len(header))
        raise DataError(f"{path}: line {bad} has {len(rows[bad - 1])} fields, the header has {len(header)}")
    table = np.char.strip(np.asarray(rows[1:], dtype=str))
    t = header.index(target)
    features = []
    for j, name in enumerate(header):
        if j == t:
            continue
        col = table[:, j]
        try:
            features.append(col.astype(np.float64))
        except ValueError:
            bad = next(i for i, v in enumerate(col) if not _parses(v))
            raise DataError(f"{path}: column {name!r} is not numeric (line {bad + 2} holds "
                            f"{str(col[bad])!r}); features must be numbers — drop or encode the "
                            "column first") from None
    if not features:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    x = np.stack(features, axis=1).astype(np.float32)
    col = table[:, t]
    class_names = None
    if _is_int_literal(col):
        y = col.astype(np.int64)
    else:
        try:
            y = col.astype(np.float64).astype(np.float32)
        except ValueError:
            names, y = np.unique(col, return_inverse=True)
            class_names = [str(n) for n in names]
            y = y.astype(np.int64)
    task, n_out = infer_task(y, where=f"{path} column {target!r}")
    if class_names is not None:
        n_out = len(class_names)
    return RawData(name=path.stem, x_train=x, y_train=y, x_test=None, y_test=None, task=task,
                   n_outputs=n_out, class_names=class_names, source=str(path))


def _parses(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True
