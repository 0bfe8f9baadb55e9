"""``trainwell diagnose``: train a short while with probes on and print the gradient health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trainwell.cli import options

__all__ = ["register", "diagnose_command", "diagnosis_table", "print_diagnosis"]

_STYLE = {"healthy": "green", "exploding": "bold red", "vanishing": "yellow",
          "dying": "magenta", "saturating": "cyan"}


def diagnosis_table(diagnosis: Any, title: str = "Gradient health") -> Any:
    """A rich table: layer, act mean, act std, saturated %, dead %, grad norm, ratio to last,
    update/weight, verdict (coloured)."""
    from rich.table import Table

    header, rows = diagnosis.table()
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i in (0, len(header) - 1) else "right")
    for row, v in zip(rows, diagnosis.verdicts, strict=True):
        style = _STYLE.get(v.flags[0] if v.flags else "healthy", "")
        table.add_row(*row[:-1], f"[{style}]{row[-1]}[/{style}]")
    return table


def print_diagnosis(diagnosis: Any, console: Any, title: str = "Gradient health") -> None:
    """Print the per-layer table, then the network verdict and its remedies."""
    console.print(diagnosis_table(diagnosis, title))
    style = _STYLE.get(diagnosis.network, "")
    lines = diagnosis.text().split("\n")
    console.print(f"[{style}]{lines[0]}[/{style}]")
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False)


def diagnose_command(
    source: str = typer.Argument(
        ..., metavar="RECIPE|RUN",
        help="A recipe file (.toml), a built-in recipe name (e.g. diagnose_vanishing_sigmoid) "
             "or a run directory (its saved diagnosis, or its recipe when --steps is given)."),
    steps: int = typer.Option(None, "--steps", "-n", min=1,
                              help="Training steps with probes on (default 300)."),
    set_: Annotated[list[str] | None, options.sets(
        "Override a recipe field, e.g. --set model.activation=elu. Repeatable.")] = None,
    every: int = typer.Option(None, "--every", min=1,
                              help="Sample every K steps (default: steps/50, at least 1)."),
    tensorboard: Path = typer.Option(
        None, "--tensorboard", metavar="DIR",
        help='Also log the statistics to TensorBoard in DIR (needs trainwell[tensorboard]).'),
    out: Annotated[Path | None, options.out(
        "Save the samples (diagnostics/probes.npz), the verdict and the plots in a new "
        "folder under DIR.")] = None,
    seed: options.Seed = None,
    device: options.Device = None,
    quiet: Annotated[bool, options.quiet("Print only the network verdict line.")] = False,
) -> None:
    """Diagnose gradient health: train a short while with probes on, then print per layer the
    activation mean/std, saturated and dead units, gradient norm and its ratio to the top
    layer, the update/weight ratio and a verdict (healthy, vanishing, exploding, dying,
    saturating), and the network's verdict with the remedies to try.

    Examples:

        trainwell diagnose diagnose_vanishing_sigmoid

        trainwell diagnose diagnose_vanishing_sigmoid --set model.batch_norm=before

        trainwell diagnose my_recipe.toml --steps 500 --tensorboard runs/tb

        trainwell diagnose runs/20250101-120000-default
    """
    from trainwell.cli.common import check_out, cli_overrides
    from trainwell.console import make_console
    from trainwell.diagnose import ProbeRecord, judge, write_tensorboard
    from trainwell.report.diagnostics import write_run_diagnostics
    from trainwell.workflows.diagnose import diagnose

    check_out(out)
    console = make_console()
    if not console.is_terminal:   # pipes and CI: room for the nine columns
        console = make_console(width=160)
    saved = Path(source) / "diagnostics" / "probes.npz"
    overrides = cli_overrides(set_, seed=seed, device=device)
    if saved.is_file() and steps is None and not overrides and every is None:
        record = ProbeRecord.load(saved)
        diagnosis = judge(record)
        title = f"Gradient health — {source} (saved during fit)"
        if tensorboard is not None:
            write_tensorboard(record, tensorboard)
    else:
        from trainwell.workflows.diagnose import _resolve_recipe

        recipe = _resolve_recipe(source, overrides)   # bad input fails before any training
        from trainwell.train import resolve_device

        resolve_device(recipe.train.device)   # an absent device, too
        if tensorboard is not None:
            from trainwell.diagnose.tensorboard import _summary_writer
            _summary_writer()
        if not quiet:
            if Path(source).is_dir() and not saved.is_file() and steps is None:
                # a run trained without --diagnose: say that its weights are not the ones probed
                console.print(f"{source} has no saved diagnosis (fit it with --diagnose to "
                              "record one); diagnosing its recipe from fresh weights instead.",
                              highlight=False)
            console.print(f"diagnosing {recipe.name}: {steps or 300} steps with probes on…")
        result = diagnose(recipe, steps=steps or 300, every=every, tensorboard=tensorboard,
                          progress=not quiet)
        record, diagnosis = result.record, result.diagnosis
        title = f"Gradient health — {result.recipe.name}"
        if out is not None:
            from trainwell.report.rundir import new_run_dir

            folder = new_run_dir(out, f"diagnose-{result.recipe.name}")
            write_run_diagnostics(record, folder)
            _write_report(folder, result)
            if not quiet:
                console.print(f"samples, verdict, plots and report.html: {folder}")
    if quiet:
        typer.echo(diagnosis.text().split("\n")[0])
        return
    print_diagnosis(diagnosis, console, title)
    if tensorboard is not None:
        console.print(f"TensorBoard: tensorboard --logdir {tensorboard}")


def _write_report(folder: Path, result: Any) -> None:
    """summary.json, recipe.toml and report.html of a diagnosis folder (opened like a run's)."""
    from trainwell.config import save_recipe
    from trainwell.report.rundir import read_summary, write_report, write_summary

    n, first, last = result.diagnosis.steps
    summary = read_summary(folder)
    summary.update({
        "name": f"diagnose-{result.recipe.name}", "kind": "diagnosis", "status": "completed",
        "message": f"gradient health: {result.diagnosis.network} ({n} samples, steps "
                   f"{first}–{last})",
        "description": result.recipe.description, "run_dir": str(folder)})
    write_summary(folder, summary)
    save_recipe(result.recipe, folder / "recipe.toml")
    write_report(folder)


def register(app: typer.Typer) -> None:
    """Add ``diagnose`` to the ``trainwell`` app."""
    app.command("diagnose", no_args_is_help=True)(diagnose_command)
