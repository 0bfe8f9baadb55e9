"""``trainwell transfer SOURCE_RUN RECIPE``: reuse a trained run's layers for a new task.

The glue between a run directory, a recipe and :mod:`trainwell.workflows.transfer`: loads the source
network, the recipe's data, puts a new output layer on a clone of the source's lower layers,
trains in two phases (frozen, then unfrozen with a reduced learning rate) and writes a normal
run directory whose plots show both phases.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

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


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _resized(splits: Any, model: Any, resize: bool) -> Any:
    from trainwell.workflows.transfer import check_input_shape, expected_input_shape

    parts = {}
    for p in ("train", "val", "test"):
        x = getattr(splits, f"x_{p}")
        if x is not None and len(x):
            parts[f"x_{p}"] = check_input_shape(model, x, resize=resize,
                                                where=f"{splits.name} {p} data")
    if not parts or all(parts[k] is getattr(splits, k) for k in parts):
        return splits
    return replace(splits, input_shape=tuple(expected_input_shape(model)), **parts)


def _source(source_run: str | os.PathLike) -> tuple[Any, str]:
    import warnings

    from trainwell.nn import SelfNormalizationWarning
    from trainwell.workflows.transfer import load_source_model

    path = Path(source_run)
    with warnings.catch_warnings():
        # Rebuilding a saved network repeats its construction warnings: not news here.
        warnings.simplefilter("ignore", SelfNormalizationWarning)
        if (path / "recipe.toml").is_file():
            from trainwell.workflows.run import load_run

            run = load_run(path)
            return run.model, run.recipe.name
        return load_source_model(path), path.name


def transfer_run(source_run: str | os.PathLike, recipe: Any, *, reuse: int | None = None,
                 frozen_epochs: int = 4, unfreeze: int | str = "all", lr_factor: float = 0.1,
                 resize: bool = False, out: str | os.PathLike = "runs", quiet: bool = False,
                 console: Any = None) -> tuple[Path, dict[str, Any]]:
    """Train ``recipe``'s task on top of ``source_run``'s network; return (run dir, summary).

    ``recipe.train.epochs`` is the total of both phases; phase 1 trains at
    ``recipe.optimizer.lr`` with the reused layers frozen, phase 2 at ``lr × lr_factor``.
    """
    import torch

    from trainwell.nn import model_summary
    from trainwell.train import EarlyStopping, HistoryLogger, NanGuard, ProgressCallback
    from trainwell.workflows.compose import (
        binary_from_two_classes,
        load_splits,
        resolved_task,
        trainer_kwargs,
    )
    from trainwell.workflows.run import (
        add_summary_section,
        new_run_dir,
        save_run_artifacts,
        write_report,
    )
    from trainwell.workflows.transfer import (
        check_phases,
        fine_tune_trainers,
        plot_fine_tune,
        reuse_layers,
    )

    source, source_name = _source(source_run)
    splits = load_splits(recipe, progress=not quiet)
    task = resolved_task(recipe, splits)
    if task == "binary" and splits.task == "multiclass" and splits.n_outputs == 2:
        splits = binary_from_two_classes(splits)
    splits = _resized(splits, source, resize)
    n_outputs = 1 if task in ("binary", "regression") and splits.n_outputs <= 2 \
        else int(splits.n_outputs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.train.seed)       # the new head's initialization
        model = reuse_layers(source, n_outputs=n_outputs, task=task, reuse=reuse)
    # the phase options are checked before the run directory and the summary
    check_phases(frozen_epochs, recipe.train.epochs, recipe.optimizer.lr, lr_factor)
    run_dir = new_run_dir(out, f"{recipe.name}-on-{source_name}")
    if console is not None:
        from trainwell.workflows.transfer import freeze

        if frozen_epochs > 0:
            freeze(model)       # as in phase 1, so the summary counts the frozen parameters
        console.print(f"[bold]{recipe.name}[/bold] on the layers of {source_run} → {run_dir}")
        console.print(f"phase 1 (frozen reused layers), {_epochs(frozen_epochs)} at lr "
                      f"{recipe.optimizer.lr:g}:")
        console.print(str(model_summary(model, splits.input_shape)), markup=False,
                      highlight=False)
    kwargs = trainer_kwargs(recipe, splits)
    for key in ("task", "optimizer", "lr", "optimizer_params", "device", "seed"):
        kwargs.pop(key, None)
    o, t = recipe.optimizer, recipe.train
    has_val = splits.x_val is not None and len(splits.x_val) > 0
    phase2 = []
    if console is not None:
        from trainwell.train import Callback

        class _AnnouncePhase2(Callback):
            def on_fit_start(self, trainer: Any) -> None:
                what = "all hidden layers" if unfreeze == "all" else \
                    f"the top {unfreeze} hidden layers"
                console.print(f"phase 2 (unfrozen: {what}), "
                              f"{_epochs(t.epochs - frozen_epochs)} at lr {o.lr * lr_factor:g}:")

        phase2.append(_AnnouncePhase2())
    result = fine_tune_trainers(
        model, splits.x_train, splits.y_train, frozen_epochs=frozen_epochs, epochs=t.epochs,
        lr=o.lr, lr_factor=lr_factor, unfreeze=unfreeze,
        validation_data=(splits.x_val, splits.y_val) if has_val else None, optimizer=o.name,
        optimizer_params=dict(momentum=o.momentum, beta_1=o.beta_1, beta_2=o.beta_2, rho=o.rho,
                              epsilon=o.epsilon, weight_decay=o.weight_decay),
        task=task, batch_size=t.batch_size, callbacks=[ProgressCallback(quiet=quiet), NanGuard()],
        unfrozen_callbacks=phase2 + ([EarlyStopping(
            monitor=t.monitor, patience=t.patience, min_delta=t.min_delta,
            restore_best=t.restore_best)] if t.early_stopping and has_val else []),
        seed=t.seed, device=t.device, **kwargs)
    history = result.history
    trainer = result.trainers[-1]
    trainer.history = history                  # both phases in history.*, summary and report
    trainer.step = sum(tr.step for tr in result.trainers)
    HistoryLogger(run_dir / "history.csv", run_dir / "history.json").write(history)
    info = {"source_run": str(source_run), "reused": model.trainwell_transfer["reused"],
            "frozen_epochs": frozen_epochs, "epochs": t.epochs, "unfreeze": unfreeze,
            "lr": o.lr, "lr_factor": lr_factor, "phase2_lr": o.lr * lr_factor,
            "resized": resize, "phase_switch_epoch": result.phase_switch_epoch}
    summary = save_run_artifacts(run_dir, recipe=recipe, trainer=trainer, model=model,
                                 splits=splits, extra_summary={"transfer": info}, report=False)
    plot_fine_tune(history, run_dir / "plots" / "transfer_phases.png",
                   title=f"{recipe.name} on {source_name}: frozen → unfrozen")
    add_summary_section(run_dir, "Transfer learning", [
        ["setting", "value"],
        ["source run", str(source_run)],
        ["reused layers", ", ".join(info["reused"])],
        ["phase 1 (frozen)", f"{frozen_epochs} epochs at lr {o.lr:g}, only the new output "
                             "layer trains"],
        ["phase 2 (unfrozen)", f"{t.epochs - frozen_epochs} epochs at lr {o.lr * lr_factor:g}, "
                               f"unfrozen: {unfreeze}"],
        ["inputs resized", "yes" if resize else "no"],
    ], text="The vertical line in transfer_phases.png marks the epoch where the reused layers "
            "were unfrozen and the learning rate reduced.")
    write_report(run_dir)
    from trainwell.report.rundir import read_summary

    return run_dir, read_summary(run_dir) or summary


def pretrain_run(recipe: Any, *, epochs_per_layer: int = 5, optimizer: str = "adam",
                 lr: float = 1e-3, batch_size: int = 128, out: str | os.PathLike = "runs",
                 quiet: bool = False, console: Any = None) -> Any:
    """Greedy layer-wise pretraining on all training inputs, then ``fit_recipe`` on the labels.

    The unlabeled data are every training input of ``[data]`` (``train_limit`` ignored); the
    supervised phase uses ``[data]`` as written, so ``train_limit`` sets how few labels there
    are. Returns the :class:`~trainwell.workflows.run.RunResult`.
    """
    from trainwell.report.rundir import add_summary_section, write_report
    from trainwell.workflows.compose import build_model_from_recipe, load_splits
    from trainwell.workflows.pretrain import check_pretrain_options, greedy_pretrain
    from trainwell.workflows.run import fit_recipe

    check_pretrain_options(epochs_per_layer, batch_size, lr)   # before the data load
    labelled = load_splits(recipe, progress=not quiet)
    if recipe.data.train_limit:
        everything = recipe.model_copy(update={"data": recipe.data.model_copy(
            update={"train_limit": 0})})
        unlabeled = load_splits(everything, progress=False).x_train
    else:
        unlabeled = labelled.x_train
    model = build_model_from_recipe(recipe, labelled)
    if console is not None:
        console.print(f"greedy layer-wise pretraining on {len(unlabeled)} unlabeled inputs, "
                      f"{epochs_per_layer} epochs per layer")
    result = greedy_pretrain(model, unlabeled, epochs_per_layer, batch_size=batch_size,
                             optimizer=optimizer, lr=lr, seed=recipe.train.seed,
                             device=recipe.train.device)
    if console is not None:
        for r in result.layers:
            console.print(f"  {r.name}: reconstruction MSE {r.initial_mse:.4g} → "
                          f"{r.final_mse:.4g}")
    run = fit_recipe(recipe, out=out, quiet=quiet, model=result.model, splits=labelled,
                     run_name=f"{recipe.name}-pretrained", console=console)
    add_summary_section(run.run_dir, "Greedy layer-wise pretraining", [
        ["layer", "autoencoder", "MSE before", "MSE after"], *result.table()],
        text=f"Each hidden layer was first trained as a shallow autoencoder (layer → linear "
             f"decoder, reconstruction MSE) on the codes of the layer below, on "
             f"{len(unlabeled)} unlabeled inputs, {epochs_per_layer} epochs per layer "
             f"({optimizer}, lr {lr:g}); then the whole network trained on "
             f"{len(labelled.y_train)} labelled inputs.")
    write_report(run.run_dir)
    return run


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
        set_: list[str] = typer.Option([], "--set", "-s", metavar="SECTION.FIELD=VALUE",
                                       help="Override a recipe field (repeatable)."),
        out: Path = typer.Option(Path("runs"), "--out", "-o",
                                 help="Folder holding the run directories."),
        seed: int = typer.Option(None, "--seed", help="Random seed (overrides train.seed)."),
        device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    ) -> None:
        """Greedy layer-wise unsupervised pretraining, then supervised training of RECIPE.

        Every training input serves as unlabeled data for the autoencoders; the supervised
        phase uses only the first data.train_limit labelled images (all when 0). Writes a
        run directory like `trainwell fit`, with the reconstruction errors in the report.

        Examples:

            trainwell pretrain default --set data.train_limit=500

            trainwell pretrain my.toml --epochs-per-layer 10
        """
        from rich.console import Console

        from trainwell.cli.common import cli_overrides
        from trainwell.cli.fit import results_table
        from trainwell.config import apply_overrides, resolve

        overrides = cli_overrides(set_, seed=seed, device=device)
        base = resolve(recipe)
        r = apply_overrides(base, overrides) if overrides else base
        console = None if quiet else Console()
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
        lr_factor: float = typer.Option(0.1, "--lr-factor", metavar="F",
                                        help="Phase-2 learning rate = recipe lr × F."),
        resize: bool = typer.Option(False, "--resize",
                                    help="Resize images to the source network's input size."),
        set_: list[str] = typer.Option([], "--set", "-s", metavar="SECTION.FIELD=VALUE",
                                       help="Override a recipe field (repeatable)."),
        out: Path = typer.Option(Path("runs"), "--out", "-o",
                                 help="Folder holding the run directories."),
        seed: int = typer.Option(None, "--seed", help="Random seed (overrides train.seed)."),
        device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
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
        from rich.console import Console

        from trainwell.cli.common import cli_overrides
        from trainwell.cli.fit import results_table
        from trainwell.config import apply_overrides, resolve

        overrides = cli_overrides(set_, seed=seed, device=device)
        base = resolve(recipe)
        r = apply_overrides(base, overrides) if overrides else base
        console = None if quiet else Console()
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
