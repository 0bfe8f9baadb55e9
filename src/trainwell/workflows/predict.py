"""Predictions of a trained run on new inputs, preprocessed exactly like its training data;
with MC dropout, the spread, the entropy and an uncertainty flag per example.
``trainwell predict`` is :func:`predict_run` plus printing.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["Predictions", "predict_run", "read_inputs", "prepare_inputs", "predict_proba",
           "looks_prescaled"]


def read_inputs(path: Path, *, target: str = "target", notes: list[str] | None = None) -> Any:
    """Raw features from ``.npz`` (array ``x``, or the only array, saying so in ``notes``) or
    ``.csv`` (header row; the ``target`` column, when present, is dropped).

    Raises:
        DataError: an unreadable file, no array ``x`` among several, or features that are not
            real numbers (text, complex) or hold no example.
    """
    import numpy as np

    from trainwell.errors import DataError

    if not path.is_file():
        raise DataError(f"INPUT: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if not hasattr(z, "files"):
                    raise ValueError("a lone .npy array, not an .npz archive")
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # BadZipFile, EOFError (0 bytes), ValueError, OSError
            raise DataError(f"INPUT: {path} is not a readable .npz file "
                            f"({type(exc).__name__}: {exc})") from None
        if "x" in arrays:
            return _real_features(arrays["x"], path)
        if len(arrays) == 1:
            (name, x), = arrays.items()
            if notes is not None:
                notes.append(f"note: {path} has no array 'x'; using its only array {name!r}")
            return _real_features(x, path)
        raise DataError(f"INPUT: {path} has no array 'x' (found {sorted(arrays)}); name the "
                        f"features x")
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            raise DataError(f"INPUT: {path} needs a header row and at least one data row")
        header, body = rows[0], rows[1:]
        keep = [i for i, h in enumerate(header) if h.strip() != target]
        try:
            return np.array([[float(r[i]) for i in keep] for r in body], dtype=np.float32)
        except (ValueError, IndexError) as exc:
            raise DataError(f"INPUT: {path} must hold numeric feature columns ({exc})") from None
    raise DataError(f"INPUT: {path} is a {suffix or 'file without suffix'}; expected .npz or .csv")


def _real_features(x: Any, path: Path) -> Any:
    from trainwell.errors import DataError

    if x.dtype.kind == "c":
        raise DataError(f"INPUT: {path} holds complex numbers (dtype {x.dtype}); expected real "
                        f"feature values (the imaginary part would be dropped)")
    if x.dtype.kind not in "biuf":
        raise DataError(f"INPUT: {path} holds {x.dtype} values; expected numeric features")
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"INPUT: {path} holds no examples (shape {x.shape})")
    return x


def prepare_inputs(x_raw: Any, stats: dict[str, Any], *, where: str = "INPUT") -> Any:
    """Raw features → model inputs, exactly like the run's training data: divide by the
    pixel ``scale``, reshape to ``input_shape``, standardize with the training mean/std.

    Raises one :class:`~trainwell.errors.DataError` naming ``where`` when a sample does not
    fit the model or holds NaN/Inf (how many examples, and the first one).
    """
    import numpy as np
    import torch

    from trainwell.errors import DataError

    x = torch.as_tensor(np.asarray(x_raw)).to(torch.float32) / float(stats.get("scale") or 1.0)
    shape = tuple(stats.get("input_shape") or x.shape[1:])
    per_sample = int(np.prod(shape)) if shape else 1
    if x.dim() == 0 or x[0].numel() != per_sample:
        raise DataError(f"INPUT: samples of shape {tuple(x.shape[1:])} do not fit the model, "
                        f"which expects {shape} ({per_sample} values per sample)")
    x = x.reshape(len(x), *shape)
    if stats.get("mean") is not None and stats.get("std") is not None:
        mean = torch.as_tensor(stats["mean"], dtype=torch.float32)
        std = torch.as_tensor(stats["std"], dtype=torch.float32)
        x = (x - mean) / std  # same broadcasting as Splits.transform
    finite = torch.isfinite(x).reshape(len(x), -1).all(1)
    n_bad = int((~finite).sum())  # host sync: once per predict call
    if n_bad:
        first = int((~finite).nonzero()[0, 0])  # host sync: only on the error path
        raise DataError(f"{where}: {n_bad} example{'s' if n_bad > 1 else ''} of {len(x)} "
                        f"{'hold' if n_bad > 1 else 'holds'} NaN or Inf feature values (first "
                        f"at example {first}); predict needs finite numbers")
    return x


def looks_prescaled(x_raw: Any, stats: dict[str, Any]) -> bool:
    """True when the run's training data were divided by a ``scale`` > 1 (e.g. 255 for
    pixels) but every value of ``x_raw`` is already within [0, 1] — inputs scaled twice would
    give near-uniform predictions.

    Example:
        >>> looks_prescaled(np.array([[0.0, 0.5, 1.0]]), {"scale": 255.0})  # doctest: +SKIP
        True
    """
    import numpy as np

    scale = float(stats.get("scale") or 1.0)
    a = np.asarray(x_raw)
    if scale <= 1.0 or a.size == 0 or a.dtype.kind not in "biuf":
        return False
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    return finite.size > 0 and float(finite.max()) <= 1.0


def predict_proba(model: Any, x: Any, *, task: str = "multiclass", mc: int = 0, seed: int = 0,
                  batch_size: int = 1024) -> tuple[Any, Any]:
    """``(mean probabilities, std or None)`` through :mod:`trainwell.workflows.uncertainty`.

    ``mc=0``: one deterministic pass in eval mode
    (:func:`~trainwell.workflows.uncertainty.deterministic_predict`). ``mc=N``: MC dropout,
    :func:`~trainwell.workflows.uncertainty.mc_predict` — N stochastic passes with only dropout active
    (batch norm stays in eval mode), seeded by ``seed``; their mean and standard deviation.

    Example:
        >>> mean, std = predict_proba(model, x, mc=100, seed=0)   # doctest: +SKIP
    """
    from trainwell.workflows.uncertainty import deterministic_predict, mc_predict

    if mc <= 0:
        return deterministic_predict(model, x, batch_size=batch_size, task=task), None
    res = mc_predict(model, x, n=mc, seed=seed, task=task, batch_size=batch_size)
    return res.mean, res.std


def _columns(task: str, n_out: int, class_names: list[str] | None) -> list[str]:
    if task == "multiclass" and class_names and len(class_names) == n_out:
        return [str(c) for c in class_names]
    if task == "regression":
        return [f"y{i}" if n_out > 1 else "y" for i in range(n_out)]
    return [f"p{i}" if n_out > 1 else "p" for i in range(n_out)]


@dataclass
class Predictions:
    """What :func:`predict_run` returns: arrays (numpy), column names and what to tell the user.

    ``probabilities`` (mean over the MC passes with ``mc``), ``std`` (MC only), ``entropy`` and
    ``uncertain`` (MC, classification only), ``labels`` (the predicted class name, index, bits
    or value per example), ``notes`` (warnings and the MC summary, one line each).
    """

    probabilities: Any
    columns: list[str]
    labels: list[str]
    task: str
    std: Any = None
    entropy: Any = None
    uncertain: Any = None
    notes: list[str] = field(default_factory=list)

    def write_csv(self, f: IO[str]) -> None:
        """One row per example: predicted, probabilities[, std_*][, entropy, uncertain]."""
        cols = self.columns
        p2 = self.probabilities.reshape(len(self.probabilities), -1)
        s2 = self.std.reshape(len(self.std), -1) if self.std is not None else None
        w = csv.writer(f)
        w.writerow(["predicted", *cols, *([f"std_{c}" for c in cols] if s2 is not None else []),
                    *(["entropy", "uncertain"] if self.entropy is not None else [])])
        for i in range(len(p2)):
            row = [self.labels[i], *(f"{v:.6f}" for v in p2[i])]
            if s2 is not None:
                row += [f"{v:.6f}" for v in s2[i]]
            if self.entropy is not None:
                row += [f"{self.entropy[i]:.6f}", "1" if self.uncertain[i] else "0"]
            w.writerow(row)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (.npz arrays or .csv rows); an existing file is never overwritten."""
        import numpy as np

        p = Path(path)
        if p.suffix.lower() == ".npz":
            arrays = {"probabilities": self.probabilities}
            if self.std is not None:
                arrays["std"] = self.std
            if self.entropy is not None:
                arrays["entropy"], arrays["uncertain"] = self.entropy, self.uncertain
            if self.task == "multiclass":
                arrays["predicted"] = self.probabilities.reshape(
                    len(self.probabilities), -1).argmax(axis=1)
            np.savez(p, **arrays)
        else:
            with open(p, "x", newline="", encoding="utf-8") as f:
                self.write_csv(f)
        return p


def check_output(out: str | os.PathLike | None) -> None:
    """Refuse an output file trainwell cannot write or would overwrite (before any work)."""
    from trainwell.errors import ConfigError

    if out is None:
        return
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".npz"):
        raise ConfigError("--out", str(out), "a .csv or .npz file name")
    if out.exists():
        raise ConfigError("--out", str(out), "a file that does not exist yet (never overwritten)")
    from trainwell.atomic import check_writable_folder

    check_writable_folder(out.parent, "--out")


def predict_run(run: str | os.PathLike, input: str | os.PathLike, *, mc: int = 0,
                seed: int = 0) -> Predictions:
    """Predict ``input`` (.npz or .csv features) with the model of run directory ``run``.

    ``mc = N`` averages N MC dropout passes (only dropout active, seeded by ``seed``).

    Example:
        >>> preds = predict_run("runs/20250101-120000-default", "new.npz", mc=30)  # doctest: +SKIP
        >>> preds.save("preds.csv")                                               # doctest: +SKIP
    """
    from trainwell.workflows.run import load_run

    input = Path(input)
    loaded = load_run(run)
    extra = loaded.model_info.get("extra") or {}
    stats = extra.get("data") or {}
    notes: list[str] = []
    x_raw = read_inputs(input, target=loaded.recipe.data.target, notes=notes)
    x = prepare_inputs(x_raw, stats, where=f"INPUT {input}")
    if looks_prescaled(x_raw, stats):
        scale = float(stats["scale"])
        notes.append(f"warning: {input} looks already scaled to [0, 1] (its largest value is "
                     f"at most 1); trainwell expects raw values like the training data "
                     f"(0–{scale:g}) and divides by {scale:g} itself")
    task = loaded.task
    if mc and not any("Dropout" in type(m).__name__ for m in loaded.model.modules()):
        notes.append("warning: the model has no dropout layers; every MC pass is identical")
    entropy = uncertain = None
    if mc:
        from trainwell.workflows.uncertainty import mc_predict

        res = mc_predict(loaded.model, x, n=mc, seed=seed, task=task)
        mean, std = res.mean, res.std
        if res.entropy is not None:  # classification: the uncertainty of each example
            entropy, uncertain = res.entropy.cpu().numpy(), res.uncertain.cpu().numpy()
            notes.append(f"{int(uncertain.sum())} of {len(uncertain)} examples flagged "
                         f"uncertain ({res.rule})")
    else:
        mean, std = predict_proba(loaded.model, x, task=task)
    p = mean.cpu().numpy()
    import numpy

    bad = ~numpy.isfinite(p.reshape(len(p), -1)).all(axis=1)
    if bad.any():  # never print NaN/Inf as results
        from trainwell.errors import DataError

        raise DataError(f"the model gives non-finite outputs (NaN/Inf) for {int(bad.sum())} of "
                        f"{len(bad)} examples of {input} (first at example "
                        f"{int(bad.argmax())}); no predictions were written")
    s = std.cpu().numpy() if std is not None else None
    cols = _columns(task, p.shape[1] if p.ndim == 2 else 1, extra.get("class_names"))
    p2 = p.reshape(len(p), -1)
    if task == "multiclass":
        idx = p2.argmax(axis=1)
        labels = [cols[i] for i in idx] if extra.get("class_names") else [str(i) for i in idx]
    elif task in ("binary", "multilabel"):
        labels = ["".join("1" if v > 0.5 else "0" for v in row) for row in p2]
    else:
        labels = [f"{row[0]:.6g}" for row in p2]
    return Predictions(p, cols, labels, task, s, entropy, uncertain, notes)
