"""``trainwell export RUN``: a deployable artifact of a trained run, and what it cost and gained."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register", "export", "export_table"]


def export_table(result) -> object:
    """A rich table of an :class:`~trainwell.export.ExportResult`."""
    from rich.table import Table

    header, *rows = result.table
    table = Table(title=f"export {result.folder.name}")
    table.add_column("")
    for name in header[1:]:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def export(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory written by `trainwell fit`."),
    fold_bn: bool = typer.Option(False, "--fold-bn",
                                 help="Fold batch norm into the linear layers (exact at "
                                      "inference, fewer operations)."),
    prune: float = typer.Option(None, "--prune", metavar="THRESHOLD",
                                help="Zero every linear weight with |w| < THRESHOLD."),
    sparsity: float = typer.Option(None, "--sparsity", metavar="S",
                                   help="Zero the fraction S (0 ≤ S < 1) of smallest-magnitude "
                                        "linear weights across layers."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32, fp16, bf16 or int8 (dynamic quantization of the "
                                       "linear layers)."),
    format: str = typer.Option("torchscript", "--format",
                               help="torchscript (every precision), pt2 (torch.export), onnx "
                                    "(needs the onnx extra) or state (safetensors + "
                                    "model.json)."),
    out: Annotated[Path | None, options.out(
        "Create the export folder in DIR (default RUN/export); an existing folder is never "
        "overwritten.")] = None,
    threads: int = typer.Option(None, "--threads", min=1,
                                help="CPU threads for the latency timings (default: torch's "
                                     "setting; 1 is steadiest on a busy machine)."),
    repeats: int = typer.Option(15, "--repeats", min=1,
                                help="Timed rounds per latency measurement."),
    quiet: Annotated[bool, options.quiet("Print only the export folder.")] = False,
) -> None:
    """Export a trained run for deployment: fold batch norm, prune, reduce precision, and
    write a TorchScript / torch.export / ONNX / safetensors artifact into a new folder
    `RUN/export/<timestamp>-<options>/` (with `export.json`: options, sha256, table, inputs).

    Prints validation/test accuracy and loss, parameters and non-zeros, file size and
    latency per batch (batch 1 and 1024) of the exported model against the original (the
    same model in the same format at fp32, not folded or pruned), and adds the table to
    the run's report.

    Examples:

        trainwell export runs/20250101-120000-low_latency --fold-bn --sparsity 0.5 --precision int8

        trainwell export runs/20250101-120000-default --precision fp16 --format onnx
    """
    from trainwell.errors import ConfigError
    from trainwell.export import export_model

    if prune is not None and sparsity is not None:
        raise ConfigError("--prune/--sparsity", f"--prune {prune} --sparsity {sparsity}",
                          "one of them: a magnitude threshold or a target sparsity")
    if out is not None:
        from trainwell.atomic import check_writable_folder

        check_writable_folder(out, "--out")
    console = None
    if not quiet:
        from trainwell.console import make_console

        console = make_console()
        console.print(f"exporting {run} …")
    result = export_model(run, fold_bn=fold_bn, prune=prune, sparsity=sparsity,
                          precision=precision, format=format, out=out, threads=threads,
                          timing_repeats=repeats)
    if console is None:
        typer.echo(str(result.folder))
        return
    console.print(export_table(result))
    console.print(result.text, highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"artifact: {result.files[0]}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``trainwell`` app."""
    app.command("export")(export)
