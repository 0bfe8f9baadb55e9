"""``trainwell advise``: what is wrong with a run, what to change, and (``--try``) what helped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register", "advise_command"]


def advise_command(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    as_json: bool = typer.Option(False, "--json", help="Print the advice as JSON data."),
    try_: bool = typer.Option(False, "--try",
                              help="Train the current recipe and each proposed change side by "
                                   "side (through compare, same seeds) and write improved.toml."),
    seeds: str = typer.Option(None, "--seeds", metavar="0,1",
                              help="With --try: seeds for every variant (default: the run's seed)."),
    set_: Annotated[list[str] | None, options.sets(
        "With --try: a budget for every variant, e.g. --set train.epochs=3 --set "
        "data.train_limit=5000 (not written into improved.toml). Repeatable.")] = None,
    probe_steps: int = typer.Option(
        300, "--probe-steps", metavar="N",
        help="Steps of the gradient-health probe when the run was fitted without --diagnose "
             "(0 = no probe)."),
    no_lr_find: bool = typer.Option(False, "--no-lr-find",
                                    help="Do not run the LR finder, even when the curves point "
                                         "to a learning rate too low."),
    out: Annotated[Path | None, options.out(
        "With --try: folder for the comparison (default: beside RUN).")] = None,
    quiet: Annotated[bool, options.quiet("With --try: print only the tables.")] = False,
) -> None:
    """Read a run and say what is wrong in the chapter's words: each finding with its evidence
    and a confidence, and up to three changes as --set lines and recipe diffs, each tied to the
    chapter's guideline. The advice is added to the run's report.html.

    Examples:

        trainwell advise runs/20250101-120000-default

        trainwell advise runs/20250101-120000-default --json

        trainwell advise runs/20250101-120000-default --try --seeds 0,1 --set train.epochs=5
    """
    from trainwell.cli.common import check_out
    from trainwell.errors import ConfigError
    from trainwell.workflows.advise import advise_run, check_run

    check_run(run)   # bad input: one error before anything is loaded
    check_out(out)
    run_seeds = None
    if seeds is not None or set_ or out is not None:
        if not try_:
            raise ConfigError("--seeds/--set/--out", seeds or set_ or str(out),
                              "these options only with --try")
        from trainwell.config import apply_overrides, load_recipe
        from trainwell.train.rng import parse_seeds

        run_seeds = parse_seeds(seeds) if seeds is not None else None
        apply_overrides(load_recipe(run / "recipe.toml"), list(set_ or []))  # checked before training
    advice = advise_run(run, probe_steps=probe_steps, lr_finder=not no_lr_find)
    if as_json and not try_:
        typer.echo(json.dumps(advice.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    from rich.console import Console

    console = Console()
    if not console.is_terminal:   # pipes and CI: room for the comparison table
        console = Console(width=160)
    if not as_json:
        typer.echo(advice.text())
    if not try_:
        return
    from trainwell.studies.advise_try import try_proposals
    from trainwell.studies.compare import print_table

    result = try_proposals(advice, seeds=run_seeds, overrides=list(set_ or []), out=out,
                           quiet=quiet or as_json, console=None if as_json else console)
    if as_json:
        typer.echo(json.dumps({"advice": advice.to_dict(), "try": result.to_dict()}, indent=2,
                              ensure_ascii=False, default=str))
        return
    print_table(result.comparison, console)
    for line in result.lines():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``advise`` to the ``trainwell`` app."""
    app.command("advise", no_args_is_help=True)(advise_command)
