"""``trainwell study transfer|pretrain``: the chapter's experiments over several random seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register", "study_app"]

# the options both studies take, declared once
Seeds = Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 0,1,2 or 0-4.")]
DataDir = Annotated[Path | None, typer.Option(
    "--data", metavar="DIR", help="Folder holding fashion-mnist/ (default $TRAINWELL_DATA).")]
Quick = Annotated[bool, typer.Option("--quick",
                                     help="A small synthetic dataset and network: seconds.")]

study_app = typer.Typer(
    help="Reproduce the chapter's experiments over several random seeds: a table per seed with mean and "
         "standard deviation, a plot, and a run directory with report.html.",
    no_args_is_help=True)


def _factors(text: str | None) -> tuple[float, ...] | None:
    from trainwell.errors import ConfigError

    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = (-1.0,)
    if not all(0 < v <= 1 for v in values):
        raise ConfigError("--compare-lr-factors", text, "numbers in (0, 1] separated by "
                          "commas, e.g. 1 or 0.5,1, or none")
    return values


def _console(quiet: bool):
    from trainwell.console import make_console

    return None if quiet else make_console()


@study_app.command("transfer")
def transfer_study(
    seeds: Seeds = "0,1,2",
    data: DataDir = None,
    out: options.Out = Path("runs"),
    quick: Quick = False,
    epochs_a: int = typer.Option(None, "--epochs-a", help="Epochs of model A (default 20)."),
    epochs_b: int = typer.Option(None, "--epochs-b",
                                 help="Epochs of model B, both phases for B on A (default 20)."),
    frozen_epochs: int = typer.Option(None, "--frozen-epochs",
                                      help="Epochs with the reused layers frozen (default 4)."),
    lr_factor: float = typer.Option(None, "--lr-factor",
                                    help="Phase-2 lr factor (default 0.1: 1e-3 → 1e-4)."),
    compare_lr_factors: str = typer.Option(
        None, "--compare-lr-factors", metavar="F1,F2",
        help="Extra B-on-A arms with these phase-2 lr factors (default 1: the 2nd edition's 1e-3; "
             "'none' for no extra arm)."),
    vary_subset: bool = typer.Option(False, "--vary-subset",
                                     help="A seeded random choice of the 200 task-B images per "
                                          "seed instead of the book's first 200."),
    device: options.Device = None,
    quiet: options.Quiet = False,
) -> None:
    """Task A (8 Fashion-MNIST classes) → task B (shirts vs sandals, 200 images).

    For each seed: model A, model B from scratch, model B on A (frozen 4 epochs at 1e-3, then
    unfrozen 16 epochs at 1e-4), as set up in the chapter; prints the test accuracies per seed,
    their mean and standard deviation, and writes a run directory with a bar plot.

    Examples:

        trainwell study transfer --seeds 0,1,2

        trainwell study transfer --quick --out /tmp/runs
    """
    from trainwell.studies.experiments.transfer_study import (
        TransferStudyConfig,
        _config_with,
        run_transfer_study,
    )

    base = TransferStudyConfig.quick() if quick else TransferStudyConfig()
    config = _config_with(base, epochs_a=epochs_a, epochs_b=epochs_b,
                          frozen_epochs=frozen_epochs, lr_factor=lr_factor, device=device,
                          vary_b_subset=vary_subset or None,
                          compare_lr_factors=_factors(compare_lr_factors))
    run_transfer_study(seeds, config=config, data_dir=data, out=out, quick=quick, quiet=quiet,
                       console=_console(quiet))


@study_app.command("pretrain")
def pretrain_study(
    seeds: Seeds = "0,1,2",
    data: DataDir = None,
    out: options.Out = Path("runs"),
    quick: Quick = False,
    labels: int = typer.Option(None, "--labels", help="Labelled training images (default 500)."),
    epochs_per_layer: int = typer.Option(None, "--epochs-per-layer",
                                         help="Autoencoder epochs per hidden layer (default 5)."),
    epochs: int = typer.Option(None, "--epochs", help="Supervised epochs of both arms (20)."),
    device: options.Device = None,
    quiet: options.Quiet = False,
) -> None:
    """Few labels: from scratch vs greedy layer-wise unsupervised pretraining.

    Each hidden layer is first trained as a shallow autoencoder on all the (unlabeled)
    training images, then the network is trained on the few labelled images; the other arm
    starts from the same weights without pretraining.

    Examples:

        trainwell study pretrain --labels 500 --seeds 0,1,2

        trainwell study pretrain --quick
    """
    from dataclasses import replace

    from trainwell.studies.experiments.pretrain_study import PretrainStudyConfig, run_pretrain_study

    base = PretrainStudyConfig.quick() if quick else PretrainStudyConfig()
    changes = {k: v for k, v in dict(n_labels=labels, epochs_per_layer=epochs_per_layer,
                                     epochs=epochs, device=device).items() if v is not None}
    run_pretrain_study(seeds, config=replace(base, **changes), data_dir=data, out=out,
                       quick=quick, quiet=quiet, console=_console(quiet))


@study_app.command("chapter11")
def chapter11_study(
    seeds: str = typer.Option("42,43,44", "--seeds", help="Seeds, e.g. 42,43,44 or 0-4."),
    only: str = typer.Option(None, "--only", metavar="GROUP,...",
                             help="Only these groups: deep_nets, batch_norm, optimizers, "
                                  "schedules, regularization, transfer, pretraining, exercise."),
    quick: bool = typer.Option(False, "--quick",
                               help="Synthetic data and small networks: every group in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per variant "
                                 "(variant, final/best validation accuracy, test accuracy, "
                                 "per-seed values) instead of the tables."),
    data: Path = typer.Option(None, "--data", metavar="DIR",
                              help="Folder holding fashion-mnist/ (default $TRAINWELL_DATA)."),
    set_: options.Sets = None,
    out: options.Out = Path("runs"),
    device: options.Device = None,
    quiet: options.Quiet = False,
) -> None:
    """The experiments of the chapter's notebook (Géron, ch. 11), each variant a built-in recipe.

    Per group a table: variant | the book's printed value | trainwell mean ± std over the
    random seeds | per-seed values | epochs | time. The run directory's report.html adds each group's
    learning curves. The whole study takes hours on a CPU: pick groups with --only.

    Examples:

        trainwell study chapter11 --only batch_norm,optimizers --seeds 42,43,44

        trainwell study chapter11 --only deep_nets --seeds 42 --set train.epochs=2

        trainwell study chapter11 --quick --json
    """
    import json

    from trainwell.studies.chapter11 import (
        print_tables,
        records,
        run_chapter11,
        select_groups,
        write_study_run,
    )
    from trainwell.train.rng import parse_seeds

    set_ = list(set_ or [])                 # applied to every recipe-based variant
    seed_list = parse_seeds(seeds)
    select_groups(only)                     # a bad --only stops before anything trains
    if device is not None:
        from trainwell.config import Recipe, apply_overrides

        apply_overrides(Recipe(), [f"train.device={device}"])   # one train.device error
    console = None if quiet or as_json else _console(quiet)

    def say(text: str) -> None:
        if console is not None:
            console.print(text)

    results = run_chapter11(seed_list, only=only, quick=quick, device=device, data_dir=data,
                            overrides=set_, say=say)
    run = write_study_run(results, seeds=seed_list, out=out, quick=quick, overrides=set_)
    if as_json:
        typer.echo(json.dumps({"run_dir": str(run), "seeds": seed_list,
                               "variants": records(results)}, indent=1))
        return
    if console is not None:
        print_tables(results, console, quick=quick, overrides=set_)
        console.print(f"report: {run / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add the ``study`` command group to the ``trainwell`` app."""
    app.add_typer(study_app, name="study")
