"""`trainwell tune RECIPE --space SPACE --trials N`: Optuna search over recipe fields."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("tune")
    def tune(
        recipe: Annotated[str, typer.Argument(metavar="RECIPE",
                                              help="recipe file or built-in recipe name")],
        space: Annotated[str, typer.Option(
            help="search space TOML (recipe field → distribution) or a built-in space, "
                 "e.g. fashion_mlp")],
        trials: Annotated[int, typer.Option(help="trials to run now (added to the study)")
                          ] = 20,
        study_name: Annotated[str | None, typer.Option(
            help="study name (default: the recipe name)")] = None,
        storage: Annotated[str | None, typer.Option(
            help="Optuna storage URL (default sqlite:///OUT/tune-STUDY/study.db)")] = None,
        timeout: Annotated[float | None, typer.Option(
            help="stop starting trials after this many seconds")] = None,
        out: Annotated[Path, options.out("parent folder of tune-STUDY/")] = Path("runs"),
        set_: Annotated[list[str] | None, options.sets(
            "override a field of the base recipe: section.field=value")] = None,
        metric: Annotated[str, typer.Option(
            help="auto (val_accuracy, or val_loss for regression) or a history key")
        ] = "auto",
        seed: Annotated[int, options.seed(
            "sampler seed (use a different one in each parallel process)")] = 0,
        prune: Annotated[bool, typer.Option(help="median pruning of unpromising trials")
                         ] = True,
        device: options.Device = None,
        verbose: Annotated[bool, typer.Option(help="show each trial's training output")
                           ] = False,
        jobs: Annotated[int, typer.Option(
            "--jobs", "-j", metavar="N",
            help="train N trials at the same time, in N processes sharing the study (each "
                 "with its own sampler seed; the cores are shared)")] = 1,
    ) -> None:
        """Search hyperparameters with Optuna (TPE sampler, median pruning per epoch).

        The study is stored in SQLite and loaded if it exists: run the command again to add
        trials, or run it in several processes at once. Prints the best trials, writes
        best_recipe.toml (ready for `trainwell fit`) and plots of the search history and the
        parameter importances. A space file maps recipe fields to distributions, e.g.
        `"optimizer.lr" = {low = 1e-4, high = 0.1, log = true}` and
        `"model.activation" = ["relu", "elu"]` (TOML tables such as `[optimizer.lr]` work too).

        Examples:

            trainwell tune default --space fashion_mlp --trials 30

            trainwell tune selu --space learning_rate --trials 10 --set train.epochs=5

            trainwell tune default --space fashion_mlp --trials 32 --jobs 4
        """
        from trainwell.cli.common import check_out, recipe_from_cli
        from trainwell.console import make_console
        from trainwell.studies.tune import load_space, print_best_trials, require_optuna, run_study

        require_optuna()
        check_out(out)
        if trials < 1:   # before the search is announced
            from trainwell.errors import ConfigError

            raise ConfigError("--trials", trials, "an integer ≥ 1")
        from trainwell.studies.jobs import check_jobs

        check_jobs(jobs)
        console = make_console()
        base = recipe_from_cli(recipe, set_, device=device)
        specs = load_space(space, base)  # every field and bound checked before any trial
        console.print(f"[bold]searching {len(specs)} parameters[/bold]: "
                      + ", ".join(s.path for s in specs) + f" — {trials} trials")
        result = run_study(base, specs, n_trials=trials, study_name=study_name,
                           storage=storage, timeout=timeout, out=out, seed=seed, metric=metric,
                           prune=prune, quiet=not verbose, console=console, jobs=jobs)
        print_best_trials(result, console)
        for note in result.notes:
            console.print(f"[yellow]note: {note}[/yellow]")
        if result.best_recipe_path is not None:
            console.print(f"best recipe: {result.best_recipe_path}  "
                          f"(trainwell fit {result.best_recipe_path})")
        for p in result.plots:
            console.print(f"plot: {p}")
        console.print(f"study: {result.storage}")
        if result.interrupted:  # the finished trials are in the study; the best recipe too
            console.print("interrupted: the finished trials are kept; run the same command "
                          "again to add trials", markup=False, highlight=False)
            raise typer.Exit(130)
