"""``trainwell transfer SOURCE_RUN RECIPE`` and ``trainwell pretrain RECIPE``: parse the options,
call :func:`trainwell.workflows.transfer_run.transfer_run` or
:func:`trainwell.workflows.pretrain_run.pretrain_run`, print where the run went.
"""

from __future__ import annotations

from pathlib import Path

import typer

from trainwell.cli import options
from trainwell.workflows.pretrain_run import pretrain_run
from trainwell.workflows.transfer_run import transfer_run

__all__ = ["register", "transfer_run", "pretrain_run", "parse_unfreeze"]


def parse_unfreeze(value: str | int) -> int | str:
    """``"all"`` or a non-negative integer (the number of top hidden layers to unfreeze)."""
    from trainwell.errors import ConfigError

    text = str(value).strip().lower()
    if text == "all":
        return "all"
    if text.isdigit():
        return int(text)
    raise ConfigError("--unfreeze", value, 'a number of top hidden layers (e.g. 1, 2) or "all"')


def register(app: typer.Typer) -> None:
    """Add ``transfer`` and ``pretrain`` to the ``trainwell`` app."""

    @app.command("pretrain")
    def pretrain(
        recipe: str = typer.Argument(..., metavar="RECIPE",
                                     help="A recipe file or built-in name; data.train_limit "
                                          "sets how many training images keep their labels."),
        epochs_per_layer: int = typer.Option(5, "--epochs-per-layer",
                                             help="Autoencoder epochs per hidden layer."),
        pretrain_lr: float = typer.Option(1e-3, "--pretrain-lr",
                                          help="Learning rate of the autoencoders (Adam)."),
        set_: options.Sets = None,
        out: options.Out = Path("runs"),
        seed: options.Seed = None,
        device: options.Device = None,
        quiet: options.Quiet = False,
    ) -> None:
        """Greedy layer-wise unsupervised pretraining, then supervised training of RECIPE.

        Every training input serves as unlabeled data for the autoencoders; the supervised
        phase uses only the first data.train_limit labelled images (all when 0). Writes a
        run directory like `trainwell fit`, with the reconstruction errors in the report.

        Examples:

            trainwell pretrain default --set data.train_limit=500

            trainwell pretrain my.toml --epochs-per-layer 10
        """
        from trainwell.cli.common import cli_overrides
        from trainwell.cli.fit import results_table
        from trainwell.config import apply_overrides, resolve
        from trainwell.console import make_console

        overrides = cli_overrides(set_, seed=seed, device=device)
        base = resolve(recipe)
        r = apply_overrides(base, overrides) if overrides else base
        console = None if quiet else make_console()
        run = pretrain_run(r, epochs_per_layer=epochs_per_layer, lr=pretrain_lr, out=out,
                           quiet=quiet, console=console)
        if console is not None:
            console.print(results_table(run.summary))
            console.print(f"run directory: {run.run_dir}")

    @app.command("transfer")
    def transfer(
        source_run: Path = typer.Argument(..., metavar="SOURCE_RUN",
                                          help="A run directory (or saved model folder) whose "
                                               "network is reused."),
        recipe: str = typer.Argument(..., metavar="RECIPE",
                                     help="The new task's recipe: a .toml file or a built-in "
                                          "name (its [data], [optimizer] and [train] are used; "
                                          "train.epochs = both phases)."),
        reuse: int = typer.Option(None, "--reuse", metavar="K",
                                  help="Reuse the first K hidden layers (default: all)."),
        frozen_epochs: int = typer.Option(4, "--frozen-epochs", metavar="N",
                                          help="Epochs with the reused layers frozen."),
        unfreeze: str = typer.Option("all", "--unfreeze", metavar="TOP_K|all",
                                     help="Hidden layers to unfreeze after phase 1, counted "
                                          "from the top, or all."),
        lr_factor: float = typer.Option(
            1.0, "--lr-factor", metavar="F",
            help="Phase-2 learning rate = recipe lr × F (default 1: keep the rate; with the "
                 "chapter's 16 unfrozen epochs of 7 steps, 0.1 is too few updates to train)."),
        resize: bool = typer.Option(False, "--resize",
                                    help="Resize images to the source network's input size."),
        set_: options.Sets = None,
        out: options.Out = Path("runs"),
        seed: options.Seed = None,
        device: options.Device = None,
        quiet: options.Quiet = False,
    ) -> None:
        """Reuse a trained network for a new task: new output layer, frozen then fine-tuned.

        Phase 1 freezes the reused layers and trains the new output layer for
        --frozen-epochs at the recipe's learning rate; phase 2 unfreezes the top layers
        (--unfreeze) and trains the remaining epochs at lr × --lr-factor. The source run is
        never modified. Writes a run directory like `trainwell fit` (plots/transfer_phases.png
        shows both phases).

        Examples:

            trainwell fit transfer_fashion_a

            trainwell transfer runs/20260101-120000-transfer_fashion_a transfer_fashion_b

            trainwell transfer RUN my_task.toml --reuse 3 --unfreeze 1 --lr-factor 0.05
        """
        from trainwell.cli.common import cli_overrides
        from trainwell.cli.fit import results_table
        from trainwell.config import apply_overrides, resolve
        from trainwell.console import make_console

        overrides = cli_overrides(set_, seed=seed, device=device)
        base = resolve(recipe)
        r = apply_overrides(base, overrides) if overrides else base
        console = None if quiet else make_console()
        run_dir, summary = transfer_run(source_run, r, reuse=reuse, frozen_epochs=frozen_epochs,
                                        unfreeze=parse_unfreeze(unfreeze), lr_factor=lr_factor,
                                        resize=resize, out=out, quiet=quiet, console=console)
        if console is not None:
            console.print(results_table(summary))
            console.print(f"run directory: {run_dir}")
            console.print(f"report: {run_dir / 'report.html'}")
        if summary.get("status") == "diverged":
            typer.echo(f"error: {summary.get('message', 'training diverged')}", err=True)
            raise typer.Exit(1)
