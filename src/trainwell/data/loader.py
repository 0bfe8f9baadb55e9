"""``load_dataset``: a name or a file path in, :class:`~trainwell.data.splits.Splits` out."""

from __future__ import annotations

import functools
from pathlib import Path

from trainwell.data.builtin import BUILTINS, load_builtin, obtain
from trainwell.data.cache import data_dir
from trainwell.data.files import load_csv, load_npz
from trainwell.data.folders import is_folder_dataset, load_folder_dataset
from trainwell.data.raw import RawData
from trainwell.data.registry import DATASETS
from trainwell.data.splits import Splits, make_splits
from trainwell.data.validate import validate_arrays
from trainwell.errors import ConfigError, DataError

__all__ = ["load_dataset", "load_raw"]


@functools.lru_cache(maxsize=2)
def _decoded(name: str, kind: str, path: str, mtime: float) -> RawData:
    # Decoding 60k gzip images takes ~0.5 s; sweeps and tests load the same data repeatedly
    # (in this process: this cache; in the next one: the decoded copy on disk).
    raw = load_builtin(BUILTINS[name], kind, Path(path), cache=True)
    for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        a.setflags(write=False)  # shared between calls: nothing may modify it in place
    return raw


def load_raw(name_or_path: str | Path, *, cache_dir: str | Path | None = None,
             target: str = "target", download: bool = True, progress: bool = True) -> RawData:
    """The unsplit arrays of a built-in dataset (obtained if needed) or of a .npz/.csv file."""
    text = str(name_or_path)
    suffix = Path(text).suffix.lower()
    if suffix == ".npz":
        return load_npz(text)
    if suffix == ".csv":
        return load_csv(text, target=target)
    entry = DATASETS.get(text, field="data.dataset")
    if entry.meta.get("kind") == "file":
        raise ConfigError("data.path", None, f"a path to a {entry.meta['suffix']} file for "
                          f"dataset {entry.name!r}")
    if entry.meta.get("kind") == "folder":
        raise ConfigError("data.path", None, f"a folder for dataset {entry.name!r} "
                          "(load it with load_dataset(path))")
    ds = entry.obj
    root = Path(cache_dir) if cache_dir is not None else data_dir()
    kind, path = obtain(ds, root, download=download, progress=progress)
    stamp = max(p.stat().st_mtime for p in ([path] if path.is_file() else
                                           [path / f for f in ds.files]))
    return _decoded(ds.name, kind, str(path.resolve()), stamp)


def load_dataset(name_or_path: str | Path, *, validation: int | float = 5000,
                 stratify: bool = True, standardize: bool = True, flatten: bool = False,
                 classes=None, train_limit: int = 0, seed: int = 0,
                 cache_dir: str | Path | None = None, target: str = "target",
                 download: bool = True, progress: bool = True) -> Splits:
    """Load a dataset by name (``fashion_mnist``, ``mnist``, ``cifar10``) or path (.npz/.csv,
    an image folder ``root/<class>/*.png`` or a folder with ``x.npy``/``y.npy``, in memory;
    :func:`trainwell.data.folders.load_folder_dataset` also streams).

    Built-in datasets are read from ``cache_dir`` (default :func:`data_dir`) and downloaded
    (sha256 checked) when absent. The result is split, subset, standardized and validated
    as described in :func:`~trainwell.data.splits.make_splits`.

    Args:
        validation: int = the last N training examples (default 5000, the book's 55k/5k
            split); float in (0, 1) = a seeded fraction, stratified by class when ``stratify``.
        stratify: stratify fractional splits by class (default True).
        standardize: per-feature standardization with training statistics (default True).
        flatten: images become vectors (default False: (N, 28, 28) / (N, 3, 32, 32)).
        classes: keep only these classes (indices or names), relabelled 0..k−1.
        train_limit: keep the first N training examples (0 = all).
        seed: seed of fractional splits.
        cache_dir: data folder (default ``$TRAINWELL_DATA`` or the user cache dir).
        target: the target column of a CSV file.
        download: allowed to download missing built-in datasets (default True).
        progress: show download progress bars (default True).

    Example:
        >>> s = load_dataset("fashion_mnist")  # doctest: +SKIP
        >>> s.x_train.shape, s.x_val.shape, s.x_test.shape  # doctest: +SKIP
        (torch.Size([55000, 28, 28]), torch.Size([5000, 28, 28]), torch.Size([10000, 28, 28]))

    Raises:
        ConfigError: an unknown dataset name or a bad split option.
        DataError: a dataset that cannot be obtained or arrays that cannot be used.
    """
    text = str(name_or_path)
    if text not in DATASETS and is_folder_dataset(text):   # image folder or .npy pair
        return load_folder_dataset(text, validation=validation, stratify=stratify,
                                   standardize=standardize, flatten=flatten, classes=classes,
                                   train_limit=train_limit, seed=seed, stream=False)
    raw = load_raw(name_or_path, cache_dir=cache_dir, target=target, download=download,
                   progress=progress)
    for x, y, where in ((raw.x_train, raw.y_train, "data.x_train"),
                        (raw.x_test, raw.y_test, "data.x_test")):
        if x is not None:
            try:
                validate_arrays(x, y, task=raw.task, n_outputs=raw.n_outputs,
                                input_shape=x.shape[1:], where=where)
            except DataError as exc:
                raise DataError(f"{raw.source or raw.name}: {exc}") from None
    return make_splits(raw, validation=validation, stratify=stratify, standardize=standardize,
                       flatten=flatten, classes=classes, train_limit=train_limit, seed=seed)
