"""``trainwell fit``: train a recipe into a new run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from trainwell.cli import options

__all__ = ["register", "fit", "results_table", "diagnosis_lines"]

EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), as docker, systemd, SLURM expect


def results_table(summary: dict[str, Any]) -> Any:
    """A rich table of the final train/validation/test metrics of a summary."""
    from rich.table import Table

    final = (summary.get("metrics") or {}).get("final") or {}
    metrics: list[str] = []
    for key in final:
        m = key.split("_", 1)[1]
        if m not in metrics:
            metrics.append(m)
    table = Table(title=f"{summary.get('name', '')} — {summary.get('status', '')}")
    table.add_column("metric")
    for part in ("train", "validation", "test"):
        table.add_column(part, justify="right")
    for m in metrics:
        cells = [final.get(f"{p}_{m}") for p in ("train", "val", "test")]
        table.add_row(m, *("—" if c is None else f"{c:.4f}" for c in cells))
    return table


def diagnosis_lines(summary: dict[str, Any]) -> list[str]:
    """The network verdict line and the first remedy (or the all-clear line) that ``--diagnose``
    keeps in ``summary["diagnosis"]``; ``[]`` without one."""
    d = summary.get("diagnosis") or {}
    return [line for line in (d.get("headline"), d.get("remedy")) if line]


def fit(
    recipe: str = typer.Argument(
        None, metavar="RECIPE",
        help="A recipe file (.toml) or a built-in recipe name (see `trainwell recipes`). "
             "Optional with --resume (the run's own recipe is used)."),
    set_: options.Sets = None,
    out: options.Out = Path("runs"),
    quiet: options.Quiet = False,
    seed: options.Seed = None,
    device: options.Device = None,
    resume: Path = typer.Option(
        None, "--resume", metavar="RUN",
        help="Continue RUN (a run directory) from its last checkpoint, in the same directory. "
             "Refused when the recipe differs from RUN's recipe.toml, listing the fields."),
    force_resume: bool = typer.Option(False, "--force-resume",
                                      help="Resume even when the recipe differs."),
    diagnose: bool = typer.Option(False, "--diagnose",
                                  help="Record per-layer gradient health (sets train.diagnose)."),
    tensorboard: bool = typer.Option(
        False, "--tensorboard",
        help="Also log the learning curves (and with --diagnose the gradient-health "
             "statistics) to RUN/tensorboard (sets train.tensorboard; needs "
             "trainwell[tensorboard])."),
    nproc: int = typer.Option(
        1, "--nproc", metavar="N",
        help="Train on N processes of this machine with DistributedDataParallel (one per "
             "GPU on CUDA; gloo on CPU). train.batch_size stays the global batch. For many "
             "machines use `torchrun ... -m trainwell fit RECIPE`."),
    mlflow: bool = typer.Option(
        False, "--mlflow",
        help="Log the run to MLflow: recipe as parameters, per-epoch metrics, report and "
             "model as artifacts (sets train.mlflow; default store: ./mlruns; needs "
             "trainwell[mlflow])."),
    mlflow_uri: str = typer.Option(
        None, "--mlflow-uri", metavar="URI",
        help="MLflow tracking URI or folder (sets train.mlflow_uri; implies --mlflow)."),
) -> None:
    """Train a recipe and write a run directory: recipe, history, checkpoints, model,
    summary, plots and report.html.

    Prints the model summary, live progress and a final table of train/validation/test
    metrics. Exit code 0 when training completed or early stopping ended it, 1 when it
    diverged (NaN/Inf loss; the last good checkpoint is kept), 2 for bad input, 130 when
    interrupted with Ctrl-C, 143 when stopped by SIGTERM (both finish the step, save a
    checkpoint and the summary; resume with `--resume RUN`). Started with Ctrl-C ignored
    (`nohup`, a background job), fit keeps ignoring it; SIGTERM still stops it cleanly.
    A run directory is used by one process at a time. Waiting OpenMP threads sleep
    instead of spinning (OMP_WAIT_POLICY=PASSIVE unless you set it), which keeps epochs fast
    on a CPU shared with other processes.

    Examples:

        trainwell fit default

        trainwell fit selu --set train.epochs=5 --seed 1

        trainwell fit my_recipe.toml --out experiments --quiet

        trainwell fit --resume runs/20250101-120000-default

        trainwell fit default --nproc 2 --set train.precision="bf16"
    """
    from trainwell.report.figure_worker import start_figure_worker, stop_figure_worker

    if nproc <= 1:  # matplotlib loads in the figure worker while torch loads here
        start_figure_worker()
    try:
        from trainwell.cli.common import cli_overrides
        from trainwell.config import apply_overrides, load_recipe, resolve
        from trainwell.console import make_console
        from trainwell.errors import ConfigError
        from trainwell.report.rundir import resolve_run_dir
        from trainwell.workflows.run import fit_recipe

        if recipe is None and resume is None:
            raise ConfigError("RECIPE", None, "a recipe file or built-in name (or --resume RUN)")
        if recipe is None:
            base = load_recipe(resolve_run_dir(resume, field="--resume") / "recipe.toml")
        else:
            base = resolve(recipe)
        overrides = cli_overrides(set_, seed=seed, device=device)
        if diagnose:
            overrides.append("train.diagnose=true")
        if tensorboard:
            overrides.append("train.tensorboard=true")
        if mlflow or mlflow_uri:
            overrides.append("train.mlflow=true")
        if mlflow_uri:
            overrides.append(f"train.mlflow_uri={json.dumps(mlflow_uri)}")
        r = apply_overrides(base, overrides) if overrides else base
        if resume is None:
            from trainwell.atomic import check_writable_folder

            check_writable_folder(out, "--out")
        from trainwell.cli.launch import check_nproc

        check_nproc(nproc, r.train.device)
        if nproc > 1:
            from trainwell.train.distributed import launched_by_torchrun

            if not launched_by_torchrun():  # this process is the launcher, not a worker
                _launch(nproc, recipe=recipe, sets=set_, out=out, quiet=quiet, seed=seed,
                        device=device, resume=resume, force_resume=force_resume,
                        diagnose=diagnose, tensorboard=tensorboard)
                return

        console = make_console()
        result = fit_recipe(r, out=out, quiet=quiet, resume=resume, force=force_resume,
                            console=console, interrupt="return")
        from trainwell.train import distributed

        if not distributed.is_main():  # a DDP worker: rank 0 reports (and sets the exit code)
            return
        summary = result.summary
        status = summary.get("status")
        if not quiet:
            console.print(results_table(summary))
            verdict = diagnosis_lines(summary)
            if verdict:  # --diagnose: the gist in the terminal, the details in report.html
                console.print(verdict[0], markup=False, highlight=False,
                              style="green" if summary["diagnosis"].get("healthy") else "bold yellow")
                for line in verdict[1:]:
                    console.print(f"  {line}", markup=False, highlight=False)
            message = str(summary.get("message", ""))
            if status == "interrupted":  # the run's own directory, ready to paste
                message = f"continue with `trainwell fit --resume {result.run_dir}`"
            console.print(f"status: {status} — {message}", markup=False)
            note = summary.get("fit_note")
            if isinstance(note, dict) and note.get("text"):
                console.print(note["text"], markup=False)
            console.print(f"run directory: {result.run_dir}", markup=False)
            console.print(f"report: {result.run_dir / 'report.html'}", markup=False)
        # the status line above already says why; --quiet prints it here, once, on stderr
        if status == "interrupted":
            import signal

            by = getattr(result.trainer, "interrupt_signal", None)
            if quiet:
                what = "stopped by SIGTERM" if by == signal.SIGTERM else "interrupted"
                typer.echo(f"{what}: resume with `trainwell fit --resume {result.run_dir}`",
                           err=True)
            raise typer.Exit(EXIT_TERMINATED if by == signal.SIGTERM else EXIT_INTERRUPTED)
        if status == "diverged":
            if quiet:
                typer.echo(f"error: {summary.get('message', 'training diverged')}", err=True)
            raise typer.Exit(EXIT_DIVERGED)
    finally:
        stop_figure_worker()


def _launch(nproc: int, *, recipe: str | None, sets: list[str] | None, out: Path, quiet: bool,
            seed: int | None, device: str | None, resume: Path | None, force_resume: bool,
            diagnose: bool, tensorboard: bool) -> None:
    """Start ``nproc`` workers running this same ``fit`` (the options spelled out again)."""
    from trainwell.cli.common import check_out
    from trainwell.cli.launch import WorkerFailed, launch_fit

    check_out(out)
    args = [recipe] if recipe is not None else []
    for s in sets or []:
        args += ["--set", s]
    args += ["--out", str(out)]
    for flag, on in (("--quiet", quiet), ("--force-resume", force_resume),
                     ("--diagnose", diagnose), ("--tensorboard", tensorboard)):
        if on:
            args.append(flag)
    for opt, value in (("--seed", seed), ("--device", device), ("--resume", resume)):
        if value is not None:
            args += [opt, str(value)]
    try:
        code = launch_fit(args, nproc)
    except WorkerFailed as exc:  # a crash, not a user error: exit 1
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``fit`` to the ``trainwell`` app."""
    app.command("fit", no_args_is_help=False)(fit)
