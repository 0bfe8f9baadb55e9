"""``trainwell evaluate RUN``: loss and metrics of a trained run on one split of its data, and
with ``--mc N`` its calibration with and without MC dropout
(:func:`trainwell.workflows.uncertainty.report_run_uncertainty`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register", "evaluate"]


def evaluate(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    split: str = typer.Option("test", "--split",
                              help="Which split of the run's dataset: train, val or test."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    mc: int = typer.Option(0, "--mc", min=0, metavar="N",
                           help="Also score MC dropout with N stochastic passes (classification "
                                "only): accuracy, NLL and ECE with and without it, the share of "
                                "examples flagged uncertain, and plots/reliability_<split>.png "
                                "in the run (0 = off)."),
    seed: Annotated[int, options.seed("Seed of the MC dropout passes.")] = 0,
) -> None:
    """Evaluate a run's trained model (eval mode: dropout off, batch norm running stats)
    on the train, val or test split of the dataset its recipe names.

    With --mc N it also runs MC dropout (N passes with only dropout on) and prints a table of
    accuracy, NLL and ECE without and with it; the reliability diagram and the table are added
    to the run's report.

    Examples:

        trainwell evaluate runs/20250101-120000-default --split val

        trainwell evaluate runs/20250101-120000-mc_dropout --mc 100 --json
    """
    from trainwell.workflows.evaluate import evaluate_run

    result = evaluate_run(run, split=split, mc=mc, seed=seed)
    loaded, metrics, rep, plot = result.run, result.metrics, result.uncertainty, \
        result.reliability_plot
    if as_json:
        out = {"run": str(run), "split": split, "n": result.n, **metrics}
        if rep is not None:
            out.update(mc_passes=mc, seed=seed, deterministic=rep.deterministic.as_dict(),
                       mc=rep.mc.as_dict(), flagged=rep.flagged, rule=rep.mc_result.rule,
                       reliability_plot=str(plot))
        typer.echo(json.dumps(out))
        return
    from rich.table import Table

    from trainwell.console import make_console

    console = make_console()
    # the count goes in the caption: a long title would wrap inside the narrow table
    table = Table(title=f"{loaded.recipe.name} — {split}", caption=f"{result.n} examples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    console.print(table)
    if rep is not None:
        wanted = ("method", "accuracy", "NLL", "ECE")
        header = rep.table[0]
        cols = [header.index(c) for c in wanted]
        mc_table = Table(title=f"with and without MC dropout ({mc} passes, seed {seed})")
        for i, c in enumerate(wanted):
            mc_table.add_column(c, justify="left" if i == 0 else "right")
        for row in rep.table[1:]:
            mc_table.add_row(*(row[i] for i in cols))
        console.print(mc_table)
        console.print(rep.text, markup=False)
        console.print(f"reliability diagram: {plot}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the ``trainwell`` app."""
    app.command("evaluate")(evaluate)
