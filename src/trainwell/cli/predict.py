"""``trainwell predict RUN INPUT``: probabilities of a trained run, optionally with MC dropout
(mean, std, entropy and an uncertainty flag) — :func:`trainwell.workflows.predict.predict_run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options
from trainwell.workflows.predict import (
    check_output,
    looks_prescaled,
    predict_proba,
    predict_run,
    prepare_inputs,
    read_inputs,
)

__all__ = ["register", "predict", "read_inputs", "prepare_inputs", "predict_proba",
           "looks_prescaled"]   # the last four: trainwell.workflows.predict, kept here too


def predict(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    input: Path = typer.Argument(..., metavar="INPUT",
                                 help="Features to predict: .npz (array x) or .csv (header row)."),
    mc: int = typer.Option(0, "--mc", min=0, metavar="N",
                           help="MC dropout: average N stochastic passes with only dropout on "
                                "(batch norm stays in eval mode); adds the std, the entropy "
                                "and an `uncertain` flag per example."),
    out: Annotated[Path | None, options.out(
        "Write to FILE (.csv or .npz) instead of printing CSV.", metavar='FILE')] = None,
    seed: Annotated[int, options.seed("Seed of the MC dropout passes.")] = 0,
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
    check_output(out)   # before the model or the inputs are read
    preds = predict_run(run, input, mc=mc, seed=seed)
    for note in preds.notes:
        typer.echo(note, err=True)
    if out is None:
        preds.write_csv(sys.stdout)
        return
    preds.save(out)
    typer.echo(f"wrote {len(preds.probabilities)} predictions to {out}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to the ``trainwell`` app."""
    app.command("predict")(predict)
