"""Train/validation/test splits, class subsets, standardization, and the book's transfer split."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from trainwell.data.raw import RawData
from trainwell.errors import ConfigError, DataError

__all__ = ["Splits", "make_splits", "transfer_split", "apply_stats", "STD_FLOOR"]

STD_FLOOR = 1e-7  # features whose training std is below this are only centred (std set to 1)


@dataclass
class Splits:
    """Train/validation/test tensors plus what is needed to transform new inputs the same way.

    Features are float32; classification labels int64; binary, multilabel and regression
    targets float32 (1-D when there is one output). ``mean``/``std`` are the per-feature
    statistics of the training set (None without standardization); :meth:`transform` applies
    ``(x / scale - mean) / std`` (and the flattening) to raw inputs, e.g. in ``predict``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str] | None
    input_shape: tuple[int, ...]
    n_outputs: int
    task: str
    name: str
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    scale: float = 1.0
    flatten: bool = False
    source: str = ""
    #: the fraction of the source held out as the test set when it has none (0: its own)
    test_held_out: float = 0.0

    def transform(self, x_raw) -> torch.Tensor:
        """Raw features (as read from the source, e.g. uint8 pixels) → model inputs.

        Example:
            >>> x = splits.transform(raw_images)  # doctest: +SKIP
        """
        return _apply(x_raw, self.scale, self.input_shape, self.mean, self.std)

    def stats(self) -> dict:
        """Plain data to store with a model: name, task, class names, shapes, scale, mean/std."""
        return {"name": self.name, "task": self.task, "n_outputs": self.n_outputs,
                "class_names": self.class_names, "input_shape": list(self.input_shape),
                "scale": self.scale, "flatten": self.flatten,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}

    def class_counts(self, part: str = "train") -> dict[str, int]:
        """Examples per class in ``part`` (train/val/test), for classification tasks."""
        y = getattr(self, f"y_{part}")
        if self.task == "multiclass":
            counts = torch.bincount(y, minlength=self.n_outputs).tolist()
        elif self.task == "binary":
            counts = torch.bincount(y.to(torch.int64).reshape(-1), minlength=2).tolist()
        else:
            return {}
        names = self.class_names or [str(i) for i in range(len(counts))]
        return dict(zip(names, counts, strict=False))

    def __repr__(self) -> str:
        return (f"Splits({self.name!r}, task={self.task}, train={tuple(self.x_train.shape)}, "
                f"val={tuple(self.x_val.shape)}, test={tuple(self.x_test.shape)}, "
                f"n_outputs={self.n_outputs})")


def _apply(x_raw, scale, input_shape, mean, std) -> torch.Tensor:
    x = x_raw if isinstance(x_raw, torch.Tensor) else torch.as_tensor(np.array(x_raw))
    x = x.to(torch.float32) / scale
    if tuple(x.shape[1:]) != tuple(input_shape):
        if x[0].numel() != int(np.prod(input_shape)):
            raise DataError(f"inputs have shape {tuple(x.shape[1:])} per example; the model "
                            f"takes {tuple(input_shape)}")
        x = x.reshape(len(x), *input_shape)
    if mean is not None:
        x = (x - mean.to(x.device)) / std.to(x.device)
    return x


def apply_stats(stats: dict, x_raw) -> torch.Tensor:
    """Apply a saved :meth:`Splits.stats` dict to raw inputs, as :meth:`Splits.transform` does.

    Used by ``predict``/``evaluate`` on a model loaded from a run directory.

    Example:
        >>> x = apply_stats(json.load(open("model.json"))["data"], raw_images)  # doctest: +SKIP
    """
    mean = None if stats.get("mean") is None else torch.tensor(stats["mean"], dtype=torch.float32)
    std = None if stats.get("std") is None else torch.tensor(stats["std"], dtype=torch.float32)
    return _apply(x_raw, float(stats.get("scale", 1.0)), tuple(stats["input_shape"]), mean, std)


def _stratified_pick(y: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing round(frac · count) random examples of every class."""
    n = len(y)
    perm = rng.permutation(n)
    order = perm[np.argsort(y[perm], kind="stable")]  # grouped by class, random within
    ys = y[order]
    starts = np.r_[0, np.flatnonzero(ys[1:] != ys[:-1]) + 1]
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    take = np.repeat(np.round(counts * frac).astype(np.int64), counts)
    mask = np.zeros(n, dtype=bool)
    mask[order[rank < take]] = True
    return mask


def _holdout(x, y, amount, *, field: str, stratify: bool, classification: bool, seed: int):
    """Split off ``amount`` (int: the last N; float in (0,1): a seeded, stratified fraction)."""
    n = len(y)
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)):
        raise ConfigError(field, amount, "an int (the last N training examples) or a float in (0, 1)")
    if isinstance(amount, (int, np.integer)):
        if amount < 0 or amount >= n:
            raise ConfigError(field, amount, f"an int in 0..{n - 1} (the last N of the {n} "
                              "training examples) or a fraction in (0, 1) such as 0.1")
        keep = np.ones(n, dtype=bool)
        keep[n - int(amount):] = False
        return keep
    if not 0.0 < amount < 1.0:
        raise ConfigError(field, amount, "a float in (0, 1) or an int number of examples")
    rng = np.random.default_rng(seed)
    if stratify and classification:
        pick = _stratified_pick(y, float(amount), rng)
    else:
        pick = np.zeros(n, dtype=bool)
        pick[rng.permutation(n)[: int(round(n * amount))]] = True
    if pick.all():
        raise ConfigError(field, amount, f"a fraction that leaves training examples (n={n})")
    return ~pick


def _subset_classes(raw: RawData, classes) -> RawData:
    if raw.task != "multiclass":
        raise ConfigError("data.classes", classes, "only for multiclass datasets")
    names = raw.class_names or [str(i) for i in range(raw.n_outputs)]
    idx: list[int] = []
    for c in classes:
        if isinstance(c, str) and c in names:
            idx.append(names.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < raw.n_outputs:
            idx.append(int(c))
        else:
            raise ConfigError("data.classes", c, f"class indices 0..{raw.n_outputs - 1} or "
                              f"names among {', '.join(names)}")
    if len(set(idx)) != len(idx) or len(idx) < 2:
        raise ConfigError("data.classes", list(classes), "at least two distinct classes")
    lut = np.full(raw.n_outputs, -1, np.int64)
    lut[idx] = np.arange(len(idx))

    def keep(x, y):
        if x is None:
            return None, None
        m = lut[y] >= 0
        return x[m], lut[y[m]]

    x_tr, y_tr = keep(raw.x_train, raw.y_train)
    x_te, y_te = keep(raw.x_test, raw.y_test)
    return replace(raw, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                   n_outputs=len(idx), class_names=[names[i] for i in idx])


def _tensor(a: np.ndarray, dtype=None) -> torch.Tensor:
    a = np.ascontiguousarray(a, dtype=dtype)
    if not a.flags.writeable:  # cached source arrays are read-only: copy, never alias them
        a = a.copy()
    return torch.from_numpy(a)


def _targets(y: np.ndarray, task: str) -> torch.Tensor:
    return _tensor(y, np.int64 if task == "multiclass" else np.float32)


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and (population) std over dim 0; σ < STD_FLOOR becomes 1.

    Sums over examples as matrix-vector products: torch's dim-0 reductions are ~20x slower
    on (55000, 784). Two passes (mean, then centred squares) keep float32 accurate.
    """
    n = len(x)
    if n == 0:
        raise DataError("cannot standardize: the training set is empty")
    flat = x.reshape(n, -1)
    ones = torch.full((n,), 1.0 / n, dtype=x.dtype)
    mean = ones @ flat
    var = ones @ (flat - mean).square_()
    std = var.clamp_min_(0).sqrt_()
    std = torch.where(std < STD_FLOOR, torch.ones_like(std), std)
    shape = x.shape[1:]
    return mean.reshape(shape), std.reshape(shape)


def make_splits(raw: RawData, *, validation=5000, stratify: bool = True, standardize: bool = True,
                flatten: bool = False, classes=None, train_limit: int = 0, seed: int = 0,
                test_fraction: float = 0.2) -> Splits:
    """Turn :class:`RawData` into :class:`Splits`.

    Order: keep ``classes`` (relabelled 0..k−1 in the order given) → hold out a test set when
    the source has none (``test_fraction``, seeded, stratified) → hold out the validation set
    from the training set (int: the last N, as the book's 55,000/5,000 split; float: a seeded
    stratified fraction) → keep the first ``train_limit`` training examples (0 = all) → scale
    (x / scale) → per-feature standardization with the *training* mean and std
    (z = (x − μ_train) / σ_train; features with σ < 1e-7 are only centred).

    Raises:
        ConfigError: for a bad validation amount, train_limit or class list.
    """
    if classes:
        raw = _subset_classes(raw, classes)
    classification = raw.task == "multiclass"
    x_tr, y_tr, x_te, y_te = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    if len(y_tr) != len(x_tr):
        raise DataError(f"{raw.name}: {len(x_tr)} training examples but {len(y_tr)} targets")
    test_held_out = 0.0
    if x_te is None:
        test_held_out = test_fraction
        keep = _holdout(x_tr, y_tr, test_fraction, field="data.test_fraction",
                        stratify=stratify, classification=classification, seed=seed + 1)
        x_tr, y_tr, x_te, y_te = x_tr[keep], y_tr[keep], x_tr[~keep], y_tr[~keep]
    keep = _holdout(x_tr, y_tr, validation, field="data.validation", stratify=stratify,
                    classification=classification, seed=seed)
    x_val, y_val, x_tr, y_tr = x_tr[~keep], y_tr[~keep], x_tr[keep], y_tr[keep]
    if isinstance(train_limit, bool) or not isinstance(train_limit, (int, np.integer)) or train_limit < 0:
        raise ConfigError("data.train_limit", train_limit, "an int >= 0 (0 = all training examples)")
    if train_limit:
        x_tr, y_tr = x_tr[:train_limit], y_tr[:train_limit]

    def feats(x):
        t = _tensor(x).to(torch.float32)
        # Always a fresh tensor: standardization below works in place.
        t = t / raw.scale if raw.scale != 1.0 else t.clone()
        return t.reshape(len(t), -1) if flatten else t

    xs = [feats(x) for x in (x_tr, x_val, x_te)]
    mean = std = None
    if standardize:
        mean, std = _mean_std(xs[0])
        for x in xs:
            x.sub_(mean).div_(std)
    return Splits(x_train=xs[0], y_train=_targets(y_tr, raw.task), x_val=xs[1],
                  y_val=_targets(y_val, raw.task), x_test=xs[2], y_test=_targets(y_te, raw.task),
                  class_names=raw.class_names, input_shape=tuple(xs[0].shape[1:]),
                  n_outputs=raw.n_outputs, task=raw.task, name=raw.name, mean=mean, std=std,
                  scale=raw.scale, flatten=flatten, source=raw.source,
                  test_held_out=float(test_held_out))


_SANDAL, _SHIRT = 5, 6


def transfer_split(splits: Splits, *, task: str = "A", b_train_size: int = 200,
                   seed: int = 0) -> Splits:
    """The book's transfer-learning study on Fashion-MNIST (Géron, ch. 11).

    Task A: the 8 classes other than sandals (5) and shirts (6), relabelled 0..7 (7, 8, 9 →
    5, 6, 7). Task B: only sandals and shirts, binary with label 1 = shirt
    (``y_B = (y == 6)``, float32), ``n_outputs = 1``, and only ``b_train_size`` training
    images: the first ones with ``seed=0`` (as the book's ``X_train_B[:200]``), a seeded
    random choice for other seeds. Validation and test sets keep all images of the task's
    classes. The standardization statistics of ``splits`` are kept, so A and B models
    see the same input transform.

    Example:
        >>> a = transfer_split(load_dataset("fashion_mnist"), task="A")  # doctest: +SKIP
        >>> a.n_outputs                                                      # doctest: +SKIP
        8
    """
    if splits.task != "multiclass" or splits.n_outputs != 10:
        raise ConfigError("transfer.split", splits.name, "a 10-class dataset such as fashion_mnist "
                          "(task A drops classes 5 and 6, task B keeps only them)")
    kind = str(task).upper()
    if kind not in ("A", "B"):
        raise ConfigError("transfer.task", task, ["A", "B"])
    names = splits.class_names or [str(i) for i in range(10)]
    parts = {}
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        b = (y == _SANDAL) | (y == _SHIRT)
        if kind == "A":
            ya = y[~b]
            parts[part] = (x[~b], torch.where(ya > _SHIRT, ya - 2, ya))
        else:
            parts[part] = (x[b], (y[b] == _SHIRT).to(torch.float32))
    if kind == "A":
        class_names = [n for i, n in enumerate(names) if i not in (_SANDAL, _SHIRT)]
        return replace(splits, x_train=parts["train"][0], y_train=parts["train"][1],
                       x_val=parts["val"][0], y_val=parts["val"][1], x_test=parts["test"][0],
                       y_test=parts["test"][1], class_names=class_names, n_outputs=8,
                       name=f"{splits.name}_A")
    x_tr, y_tr = parts["train"]
    if isinstance(b_train_size, bool) or not isinstance(b_train_size, int) or not 0 < b_train_size <= len(y_tr):
        raise ConfigError("transfer.b_train_size", b_train_size,
                          f"an int in 1..{len(y_tr)} (sandal and shirt training images)")
    if seed == 0:
        idx = torch.arange(b_train_size)
    else:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(y_tr), generator=g)[:b_train_size]
    return replace(splits, x_train=x_tr[idx], y_train=y_tr[idx], x_val=parts["val"][0],
                   y_val=parts["val"][1], x_test=parts["test"][0], y_test=parts["test"][1],
                   class_names=[names[_SANDAL], names[_SHIRT]], n_outputs=1, task="binary",
                   name=f"{splits.name}_B")
