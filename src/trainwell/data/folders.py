"""``load_folder_dataset``: image folders and ``.npy`` pairs as :class:`~trainwell.data.Splits`,
in memory or streamed (``data.stream = "auto" | true | false``).

The split is the one of :func:`~trainwell.data.make_splits` (class subset → test hold-out
when the source has none → validation hold-out → ``train_limit``), computed on indices so the
features are never all loaded to decide it. The standardization statistics come from one
pass over the training features (:func:`~trainwell.data.stream.streaming_stats`); both paths
use that pass, so streamed and in-memory training see bit-identical inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwell.data.files import infer_task
from trainwell.data.sources import (
    ArraySource,
    is_npy_folder,
    open_npy_pairs,
    scan_image_folder,
)
from trainwell.data.splits import STD_FLOOR, Splits, _holdout
from trainwell.data.stream import STATS_CHUNK, StreamedPart, streaming_stats
from trainwell.errors import ConfigError, DataError

__all__ = ["load_folder_dataset", "STREAM_CHOICES", "should_stream", "memory_bytes",
           "is_folder_dataset"]

STREAM_CHOICES = ("auto", True, False)
#: ``stream = "auto"`` streams when the float32 features would take more than this share
#: of the machine's memory.
AUTO_SHARE = 0.25


def is_folder_dataset(path: str | os.PathLike) -> bool:
    """A directory (image folder or .npy pair) or an ``.npy`` file."""
    p = Path(path)
    return p.is_dir() or (p.suffix.lower() == ".npy")


def memory_bytes() -> int | None:
    """Physical memory of this machine, or None when the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def should_stream(stream: Any, nbytes: int) -> bool:
    """``stream`` resolved: ``"auto"`` streams data over :data:`AUTO_SHARE` of memory."""
    if stream is True or stream is False:
        return stream
    if stream != "auto":
        raise ConfigError("data.stream", stream, '"auto", true or false')
    total = memory_bytes()
    return total is not None and nbytes > AUTO_SHARE * total


def _open(path: Path, skip_bad: bool) -> dict[str, Any]:
    if is_npy_folder(path):
        x, y, xt, yt = open_npy_pairs(path)
        task, n_out = infer_task(y, where=f"{path} y")
        if task == "multiclass" and yt is not None and yt.size:
            n_out = max(n_out, int(yt.max()) + 1)
        return dict(kind="npy", x=x, y=y, xt=xt, yt=yt, task=task, n_outputs=n_out,
                    class_names=None, skipped=[],
                    scale=255.0 if x.dtype == np.uint8 else 1.0, name=path.stem)
    folder = scan_image_folder(path, skip_bad=skip_bad)
    return dict(kind="images", x=folder.train, y=folder.y_train, xt=folder.test,
                yt=folder.y_test, task="multiclass", n_outputs=len(folder.class_names),
                class_names=folder.class_names, skipped=folder.skipped, scale=255.0,
                name=path.name)


def _classes(src: dict[str, Any], classes: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Kept train/test rows after ``data.classes`` (labels relabelled in place in ``src``)."""
    n_tr = len(src["y"])
    n_te = len(src["yt"]) if src["yt"] is not None else 0
    if not classes:
        return np.arange(n_tr), (np.arange(n_te) if src["yt"] is not None else None)
    if src["task"] != "multiclass":
        raise ConfigError("data.classes", classes, "only for multiclass datasets")
    names = src["class_names"] or [str(i) for i in range(src["n_outputs"])]
    idx = []
    for c in classes:
        if isinstance(c, str) and c in names:
            idx.append(names.index(c))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < src["n_outputs"]:
            idx.append(c)
        else:
            raise ConfigError("data.classes", c, f"class indices 0..{src['n_outputs'] - 1} or "
                              f"names among {', '.join(names)}")
    if len(set(idx)) != len(idx) or len(idx) < 2:
        raise ConfigError("data.classes", list(classes), "at least two distinct classes")
    lut = np.full(src["n_outputs"], -1, np.int64)
    lut[idx] = np.arange(len(idx))
    keep_tr = np.flatnonzero(lut[src["y"]] >= 0)
    src["y"] = lut[src["y"]]
    keep_te = None
    if src["yt"] is not None:
        keep_te = np.flatnonzero(lut[src["yt"]] >= 0)
        src["yt"] = lut[src["yt"]]
    src["n_outputs"], src["class_names"] = len(idx), [names[i] for i in idx]
    return keep_tr, keep_te


def _targets(y: np.ndarray, task: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(
        y, dtype=np.int64 if task == "multiclass" else np.float32))


def load_folder_dataset(path: str | os.PathLike, *, validation: int | float = 5000,
                        stratify: bool = True, standardize: bool = True,
                        flatten: bool = False, classes: Any = None, train_limit: int = 0,
                        seed: int = 0, stream: Any = "auto", skip_bad: bool = False,
                        test_fraction: float = 0.2) -> Splits:
    """An image folder or an ``.npy`` pair, split like :func:`~trainwell.data.make_splits`.

    With streaming (``stream=True``, or ``"auto"`` on data over a quarter of the memory) the
    ``x_*`` fields are :class:`~trainwell.data.stream.StreamedPart` objects read per batch;
    otherwise tensors. ``splits.streamed`` says which, ``splits.skipped`` lists the images
    skipped with ``skip_bad``.

    Raises:
        DataError: naming the folder or file that cannot be used.
        ConfigError: a bad split option.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data.path: {path} does not exist")
    src = _open(path, skip_bad)
    keep_tr, keep_te = _classes(src, classes)
    if src["kind"] == "images":  # files come grouped by class: a seeded shuffle, so that the
        # validation set (the last N by default, as for arrays) holds every class
        keep_tr = keep_tr[np.random.default_rng(seed).permutation(len(keep_tr))]
    y_all = src["y"][keep_tr]
    classification = src["task"] == "multiclass"
    x_src: ArraySource = src["x"]
    if src["xt"] is None:
        keep = _holdout(None, y_all, test_fraction, field="data.test_fraction",
                        stratify=stratify, classification=classification, seed=seed + 1)
        test_src, test_rows = x_src, keep_tr[~keep]
        y_test = y_all[~keep]
        train_rows, y_tr = keep_tr[keep], y_all[keep]
    else:
        test_src, test_rows = src["xt"], keep_te
        y_test = src["yt"][keep_te]
        train_rows, y_tr = keep_tr, y_all
    keep = _holdout(None, y_tr, validation, field="data.validation", stratify=stratify,
                    classification=classification, seed=seed)
    val_rows, y_val = train_rows[~keep], y_tr[~keep]
    train_rows, y_tr = train_rows[keep], y_tr[keep]
    if isinstance(train_limit, bool) or not isinstance(train_limit, int) or train_limit < 0:
        raise ConfigError("data.train_limit", train_limit, "an int >= 0 (0 = all training "
                          "examples)")
    if train_limit:
        train_rows, y_tr = train_rows[:train_limit], y_tr[:train_limit]

    scale = src["scale"]
    parts = [StreamedPart(x_src, train_rows, scale=scale, flatten=flatten),
             StreamedPart(x_src, val_rows, scale=scale, flatten=flatten),
             StreamedPart(test_src, test_rows, scale=scale, flatten=flatten)]
    streamed = should_stream(stream, sum(p.source.nbytes_float32() * len(p) //
                                         max(len(p.source), 1) for p in parts))
    mean = std = None
    train_x = None if streamed else parts[0].materialize()
    # one pass, chunk by chunk and identical for both paths: NaN check and statistics
    chunks = _finite(parts[0].chunks() if streamed else
                     (train_x[lo:lo + STATS_CHUNK] for lo in range(0, len(train_x),
                                                                   STATS_CHUNK)), path)
    if standardize:
        mean, std = streaming_stats(chunks, tuple(parts[0].shape[1:]), STD_FLOOR)
    else:
        for _ in chunks:
            pass
    parts = [p.with_stats(mean, std) for p in parts]
    if streamed:
        xs: list[Any] = parts
    else:
        train_x.sub_(mean).div_(std) if mean is not None else None
        xs = [train_x, parts[1].materialize(), parts[2].materialize()]
    splits = Splits(x_train=xs[0], y_train=_targets(y_tr, src["task"]), x_val=xs[1],
                    y_val=_targets(y_val, src["task"]), x_test=xs[2],
                    y_test=_targets(y_test, src["task"]), class_names=src["class_names"],
                    input_shape=tuple(parts[0].shape[1:]), n_outputs=src["n_outputs"],
                    task=src["task"], name=src["name"], mean=mean, std=std, scale=scale,
                    flatten=flatten, source=str(path))
    splits.streamed = streamed
    splits.skipped = list(src["skipped"])
    return splits


def _finite(chunks: Any, path: Path) -> Any:
    for c in chunks:
        if not bool(torch.isfinite(c).all()):   # host sync: once per chunk, before training
            raise DataError(f"{path}: the training features contain NaN or Inf; clean or "
                            "impute them")
        yield c
