"""Datasets read sample by sample from disk: ``.npy`` pairs (memory-mapped) and image folders.

* **.npy pairs**: a folder with ``x.npy`` and ``y.npy`` (and optionally ``x_test.npy`` and
  ``y_test.npy``), the names of the ``.npz`` format. ``x`` is opened memory-mapped, so only
  the samples a batch needs are read.
* **Image folders**: ``root/<class>/*.png|jpg|jpeg|bmp|gif|webp`` (class names sorted
  alphabetically become labels 0..k−1), or ``root/train/<class>/…`` plus
  ``root/test/<class>/…``. Images are read with Pillow as uint8 pixels: grayscale images as
  (H, W), colour ones as (3, H, W); every image must have the same size.

Each source is an :class:`ArraySource`: ``read(indices)`` returns the raw samples (uint8 for
images, the file's dtype for ``.npy``) in the order asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainwell.errors import DataError

__all__ = ["ArraySource", "NpySource", "ImageSource", "ImageFolder", "scan_image_folder",
           "open_npy_pairs", "IMAGE_SUFFIXES", "is_image_folder", "is_npy_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class ArraySource:
    """Raw samples by index: ``len(source)``, ``source.shape`` (one sample), ``source.dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    where: str

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The samples ``indices`` (int64 array), in that order, as one array."""
        raise NotImplementedError

    def nbytes_float32(self) -> int:
        """Bytes the samples take as float32 tensors (what the in-memory path holds)."""
        return len(self) * int(np.prod(self.shape)) * 4


class NpySource(ArraySource):
    """``x.npy`` opened with ``mmap_mode="r"``: a batch reads only its rows."""

    def __init__(self, path: Path):
        self.where = str(path)
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"data.path: {path} is not a readable .npy file ({exc})") from None
        if self.array.ndim < 2 or self.array.dtype.kind not in "biuf":
            raise DataError(f"data.path: {path} holds {self.array.dtype} of shape "
                            f"{self.array.shape}; expected numbers, one sample per row")
        self.shape = tuple(int(d) for d in self.array.shape[1:])
        self.dtype = self.array.dtype

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, indices: np.ndarray) -> np.ndarray:
        # sorted reads are sequential on disk; then put the rows back in the asked order
        order = np.argsort(indices, kind="stable")
        rows = np.asarray(self.array[indices[order]])
        out = np.empty_like(rows)
        out[order] = rows
        return out


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "1", "I;16", "I", "F", "P") and not _has_colour(im):
                return np.asarray(im.convert("L"), dtype=np.uint8)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); delete "
                        "or replace it, or set data.skip_bad = true to skip unreadable "
                        "images") from None


def _has_colour(im: Any) -> bool:
    if im.mode != "P":
        return False
    return im.convert("RGB").getextrema() != im.convert("L").convert("RGB").getextrema()


class ImageSource(ArraySource):
    """Image files decoded with Pillow on demand (in DataLoader workers when streaming)."""

    def __init__(self, files: list[Path], shape: tuple[int, ...], where: str):
        self.files = files
        self.shape = shape
        self.dtype = np.dtype(np.uint8)
        self.where = where

    def __len__(self) -> int:
        return len(self.files)

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), dtype=np.uint8)
        for j, i in enumerate(indices.tolist()):   # decoding is per file by nature
            img = _read_image(self.files[i])
            if img.shape != self.shape:
                raise DataError(f"{self.files[i]}: image of shape {img.shape}, the others are "
                                f"{self.shape}; resize the images to one size")
            out[j] = img
        return out


@dataclass
class ImageFolder:
    """What :func:`scan_image_folder` found: files and labels per part, class names, skips."""

    root: Path
    class_names: list[str]
    train: ImageSource
    y_train: np.ndarray
    test: ImageSource | None = None
    y_test: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)


def is_image_folder(path: str | Path) -> bool:
    """A directory whose subfolders hold images (``root/<class>/`` or ``root/train/``)."""
    p = Path(path)
    return p.is_dir() and not (p / "x.npy").is_file()


def is_npy_folder(path: str | Path) -> bool:
    """A directory holding ``x.npy`` (an .npy pair), or the ``x.npy`` file itself."""
    p = Path(path)
    return (p.is_dir() and (p / "x.npy").is_file()) or (p.is_file() and p.suffix == ".npy")


def _class_files(root: Path, where: str) -> tuple[list[str], list[list[Path]]]:
    if not root.is_dir():
        raise DataError(f"data.path: {root} is not a folder; expected root/<class>/*.png")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"data.path: {root} has no class folders; expected "
                        f"{where}/<class>/*.png (one subfolder of images per class)")
    files = []
    for c in classes:
        found = sorted(f for f in c.iterdir() if f.is_file()
                       and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
        if not found:
            raise DataError(f"data.path: the class folder {c} holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
        files.append(found)
    if len(classes) < 2:
        raise DataError(f"data.path: {root} has one class folder ({classes[0].name}); a "
                        "classifier needs at least two, one subfolder per class")
    return [c.name for c in classes], files


def _part(root: Path, names: list[str] | None, skip_bad: bool, skipped: list[str]
          ) -> tuple[list[str], ImageSource, np.ndarray]:
    found_names, per_class = _class_files(root, str(root))
    if names is not None and found_names != names:
        raise DataError(f"data.path: {root} has classes {found_names}, the training folder "
                        f"{names}; give both the same class folders")
    files: list[Path] = []
    labels: list[int] = []
    shape = None
    first = None
    for label, group in enumerate(per_class):
        for f in group:
            try:
                img = _read_image(f)   # one pass over every file: corrupt ones fail here
            except DataError:
                if not skip_bad:
                    raise
                skipped.append(str(f))
                continue
            if shape is None:
                shape, first = img.shape, f
            elif img.shape != shape:
                if skip_bad:
                    skipped.append(str(f))
                    continue
                raise DataError(f"{f}: image of shape {img.shape}, but {first} is {shape}; "
                                "every image must have the same size (resize them, or set "
                                "data.skip_bad = true to skip the odd ones)")
            files.append(f)
            labels.append(label)
    if not files:
        raise DataError(f"data.path: no readable image under {root}")
    return found_names, ImageSource(files, shape, str(root)), np.asarray(labels, np.int64)


def scan_image_folder(path: str | Path, *, skip_bad: bool = False) -> ImageFolder:
    """Index ``root/<class>/*`` (or ``root/train`` + ``root/test``), opening every image once.

    Raises:
        DataError: naming the folder or file: no class folders, one class, a class folder
            without images, an unreadable image (unless ``skip_bad``), images of different
            sizes (unless ``skip_bad``: the ones unlike the first are skipped).
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"data.path: {root} does not exist")
    skipped: list[str] = []
    if (root / "train").is_dir() and (root / "test").is_dir():
        names, train, y = _part(root / "train", None, skip_bad, skipped)
        _, test, y_test = _part(root / "test", names, skip_bad, skipped)
        if test.shape != train.shape:
            raise DataError(f"data.path: test images are {test.shape}, training images "
                            f"{train.shape}; give both the same size")
        return ImageFolder(root, names, train, y, test, y_test, skipped)
    names, train, y = _part(root, None, skip_bad, skipped)
    return ImageFolder(root, names, train, y, None, None, skipped)


def open_npy_pairs(path: str | Path) -> tuple[NpySource, np.ndarray, NpySource | None,
                                              np.ndarray | None]:
    """``(x, y, x_test, y_test)`` of a folder with ``x.npy``/``y.npy`` (+ test pair).

    ``y`` arrays are small and read whole; ``x`` arrays stay memory-mapped.
    """
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not (folder / "x.npy").is_file() or not (folder / "y.npy").is_file():
        raise DataError(f"data.path: {folder} needs x.npy and y.npy (and optionally "
                        "x_test.npy and y_test.npy)")
    if (folder / "x_test.npy").is_file() != (folder / "y_test.npy").is_file():
        raise DataError(f"data.path: {folder} must hold both x_test.npy and y_test.npy, or "
                        "neither")

    def pair(xname: str, yname: str) -> tuple[NpySource, np.ndarray]:
        x = NpySource(folder / xname)
        try:
            y = np.load(folder / yname, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"data.path: {folder / yname} is not a readable .npy file "
                            f"({exc})") from None
        if len(y) != len(x):
            raise DataError(f"data.path: {folder / xname} has {len(x)} samples but "
                            f"{folder / yname} has {len(y)} targets")
        return x, y

    x, y = pair("x.npy", "y.npy")
    if (folder / "x_test.npy").is_file():
        xt, yt = pair("x_test.npy", "y_test.npy")
        if xt.shape != x.shape:
            raise DataError(f"data.path: x_test.npy samples are {xt.shape}, x.npy ones "
                            f"{x.shape}")
        return x, y, xt, yt
    return x, y, None, None
