"""``trainwell predict RUN INPUT``: probabilities of a trained run, optionally with MC dropout
(:func:`trainwell.workflows.uncertainty.mc_predict`: mean, std, entropy and an uncertainty flag)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["register", "predict", "read_inputs", "prepare_inputs", "predict_proba",
           "looks_prescaled"]


def read_inputs(path: Path, *, target: str = "target") -> Any:
    """Raw features from ``.npz`` (array ``x``, or the only array) or ``.csv`` (header row;
    the ``target`` column, when present, is dropped)."""
    import numpy as np

    from trainwell.errors import DataError

    if not path.is_file():
        raise DataError(f"INPUT: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"INPUT: {path} is not a readable .npz file ({exc})") from None
        if "x" in arrays:
            return arrays["x"]
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        raise DataError(f"INPUT: {path} has no array 'x' (found {sorted(arrays)})")
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


def predict(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    input: Path = typer.Argument(..., metavar="INPUT",
                                 help="Features to predict: .npz (array x) or .csv (header row)."),
    mc: int = typer.Option(0, "--mc", min=0, metavar="N",
                           help="MC dropout: average N stochastic passes with only dropout on "
                                "(batch norm stays in eval mode); adds the std, the entropy "
                                "and an `uncertain` flag per example."),
    out: Path = typer.Option(None, "--out", "-o", metavar="FILE",
                             help="Write to FILE (.csv or .npz) instead of printing CSV."),
    seed: int = typer.Option(0, "--seed", help="Seed of the MC dropout passes."),
) -> None:
    """Predict with a trained run: class probabilities (sigmoid outputs for binary/multilabel,
    values for regression), preprocessed exactly like the training data.

    Output columns: `predicted` (class name or index), one probability per class, and with
    --mc N one `std_<class>` column per class, the `entropy` of the mean prediction (nats) and
    `uncertain` (1 when the entropy is above half its maximum; classification only). A .npz
    holds the same as arrays (probabilities, std, entropy, uncertain, predicted). Without
    --out the CSV goes to stdout.

    Examples:

        trainwell predict runs/20250101-120000-default new.npz --out preds.csv

        trainwell predict runs/20250101-120000-mc_dropout new.npz --mc 100 --out preds.npz
    """
    import numpy as np

    from trainwell.errors import ConfigError
    from trainwell.workflows.run import load_run

    loaded = load_run(run)
    extra = loaded.model_info.get("extra") or {}
    stats = extra.get("data") or {}
    if out is not None and out.suffix.lower() not in (".csv", ".npz"):
        raise ConfigError("--out", str(out), "a .csv or .npz file name")
    if out is not None and out.exists():
        raise ConfigError("--out", str(out), "a file that does not exist yet (never overwritten)")
    x_raw = read_inputs(input, target=loaded.recipe.data.target)
    x = prepare_inputs(x_raw, stats, where=f"INPUT {input}")
    if looks_prescaled(x_raw, stats):
        scale = float(stats["scale"])
        typer.echo(f"warning: {input} looks already scaled to [0, 1] (its largest value is "
                   f"at most 1); trainwell expects raw values like the training data "
                   f"(0–{scale:g}) and divides by {scale:g} itself", err=True)
    task = loaded.task
    if mc and not any("Dropout" in type(m).__name__ for m in loaded.model.modules()):
        typer.echo("warning: the model has no dropout layers; every MC pass is identical",
                   err=True)
    entropy = uncertain = None
    if mc:
        from trainwell.workflows.uncertainty import mc_predict

        res = mc_predict(loaded.model, x, n=mc, seed=seed, task=task)
        mean, std = res.mean, res.std
        if res.entropy is not None:  # classification: the uncertainty of each example
            entropy, uncertain = res.entropy.cpu().numpy(), res.uncertain.cpu().numpy()
            typer.echo(f"{int(uncertain.sum())} of {len(uncertain)} examples flagged "
                       f"uncertain ({res.rule})", err=True)
    else:
        mean, std = predict_proba(loaded.model, x, task=task)
    p = mean.cpu().numpy()
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

    if out is not None and out.suffix.lower() == ".npz":
        arrays = {"probabilities": p}
        if s is not None:
            arrays["std"] = s
        if entropy is not None:
            arrays["entropy"], arrays["uncertain"] = entropy, uncertain
        if task == "multiclass":
            arrays["predicted"] = p2.argmax(axis=1)
        np.savez(out, **arrays)
        typer.echo(f"wrote {len(p)} predictions to {out}", err=True)
        return
    buf = io.StringIO() if out is None else open(out, "w", newline="", encoding="utf-8")
    try:
        w = csv.writer(buf)
        w.writerow(["predicted", *cols, *([f"std_{c}" for c in cols] if s is not None else []),
                    *(["entropy", "uncertain"] if entropy is not None else [])])
        s2 = s.reshape(len(s), -1) if s is not None else None
        for i in range(len(p2)):
            row = [labels[i], *(f"{v:.6f}" for v in p2[i])]
            if s2 is not None:
                row += [f"{v:.6f}" for v in s2[i]]
            if entropy is not None:
                row += [f"{entropy[i]:.6f}", "1" if uncertain[i] else "0"]
            w.writerow(row)
        if out is None:
            sys.stdout.write(buf.getvalue())
    finally:
        if out is not None:
            buf.close()
            typer.echo(f"wrote {len(p)} predictions to {out}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to the ``trainwell`` app."""
    app.command("predict")(predict)
