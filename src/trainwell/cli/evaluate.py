"""``trainwell evaluate RUN``: loss and metrics of a trained run on one split of its data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register", "evaluate"]


def evaluate(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    split: str = typer.Option("test", "--split",
                              help="Which split of the run's dataset: train, val or test."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Evaluate a run's trained model (eval mode: dropout off, batch norm running stats)
    on the train, val or test split of the dataset its recipe names.

    Example:

        trainwell evaluate runs/20250101-120000-default --split val
    """
    from trainwell.errors import ConfigError, DataError
    from trainwell.run import evaluate_model, load_run

    if split not in ("train", "val", "test"):
        raise ConfigError("--split", split, ["train", "val", "test"])
    loaded = load_run(run)
    splits = loaded.splits_loader()
    x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
    if x is None or len(x) == 0:
        raise DataError(f"--split {split}: the dataset of {run} has no {split} examples")
    metrics = evaluate_model(loaded.model, x, y, task=loaded.task)
    if as_json:
        typer.echo(json.dumps({"run": str(run), "split": split, "n": int(len(x)), **metrics}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.recipe.name} — {split} ({len(x)} examples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the ``trainwell`` app."""
    app.command("evaluate")(evaluate)
