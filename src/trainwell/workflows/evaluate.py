"""A finished run scored on one split of its dataset, optionally with MC dropout and
calibration (added to the run's report). ``trainwell evaluate`` is :func:`evaluate_run`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunEvaluation", "evaluate_run"]


@dataclass
class RunEvaluation:
    """What :func:`evaluate_run` returns: the metrics, how many examples, the run it read and,
    with MC dropout, the :class:`~trainwell.workflows.uncertainty.UncertaintyReport` and the
    reliability diagram written into the run."""

    run: Any
    split: str
    n: int
    metrics: dict[str, float]
    uncertainty: Any = None
    reliability_plot: Path | None = None


def evaluate_run(run: str | os.PathLike, *, split: str = "test", mc: int = 0,
                 seed: int = 0) -> RunEvaluation:
    """Evaluate run directory ``run``'s model (eval mode) on ``split`` of its recipe's dataset.

    Example:
        >>> evaluate_run("runs/20250101-120000-default", split="val").metrics   # doctest: +SKIP
        {'loss': 0.31, 'accuracy': 0.89}
    """
    from trainwell.errors import ConfigError, DataError
    from trainwell.train.evaluate import evaluate_model
    from trainwell.workflows.run import load_run
    from trainwell.workflows.uncertainty import CLASSIFICATION_TASKS

    if split not in ("train", "val", "test"):
        raise ConfigError("--split", split, ["train", "val", "test"])
    loaded = load_run(run)
    if mc and loaded.task not in CLASSIFICATION_TASKS:
        raise ConfigError("--mc", mc, "0 for this run: MC dropout calibration needs a "
                          f"classification task ({', '.join(CLASSIFICATION_TASKS)}); "
                          f"{run} is a {loaded.task} run")
    splits = loaded.splits_loader()
    x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
    if x is None or len(x) == 0:
        raise DataError(f"--split {split}: the dataset of {run} has no {split} examples")
    result = RunEvaluation(loaded, split, int(len(x)),
                           evaluate_model(loaded.model, x, y, task=loaded.task))
    if mc:
        from trainwell.workflows.uncertainty import report_run_uncertainty

        result.uncertainty = report_run_uncertainty(run, mc=mc, split=split, seed=seed,
                                                    loaded=loaded, splits=splits)
        result.reliability_plot = Path(run) / "plots" / f"reliability_{split}.png"
    return result
