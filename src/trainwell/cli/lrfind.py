"""`trainwell lr-find RECIPE`: the learning-rate range test of a recipe's model and optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("lr-find")
    def lr_find(
        recipe: Annotated[str, typer.Argument(metavar="RECIPE",
                                              help="recipe file or built-in recipe name")],
        set_: Annotated[list[str] | None, options.sets(
            "override a field: section.field=value (repeatable)")] = None,
        steps: Annotated[int, typer.Option(help="steps of the range test")] = 200,
        start_lr: Annotated[float, typer.Option(help="first learning rate")] = 1e-7,
        end_lr: Annotated[float, typer.Option(help="last learning rate")] = 10.0,
        rule: Annotated[str, typer.Option(
            help="suggestion rule: min/10 (a tenth of the lr at the lowest loss) or steepest")
        ] = "min/10",
        out: Annotated[Path, options.out("folder for the plot and the numbers")] = Path("runs"),
        seed: Annotated[int | None, options.seed("seed (init and batch order)")] = None,
        device: options.Device = None,
        quiet: Annotated[bool, options.quiet("print only the number")] = False,
    ) -> None:
        """Grow the learning rate exponentially, record the loss, suggest a maximum rate.

        The model and the optimizer are those of RECIPE; nothing is trained for real. Writes
        lr_find.png (loss against lr, log scale, the suggestion marked) and lr_find.json.

        Examples:

            trainwell lr-find default

            trainwell lr-find selu --set optimizer.name=nesterov --steps 300 --rule steepest
        """
        from trainwell.cli.common import check_out, recipe_from_cli
        from trainwell.console import make_console
        from trainwell.report.rundir import new_run_dir
        from trainwell.workflows.lrfind import RULES, lr_find_recipe, plot_lr_find

        check_out(out)
        if rule not in RULES:
            from trainwell.errors import ConfigError

            raise ConfigError("--rule", rule, list(RULES))
        r = recipe_from_cli(recipe, set_, seed=seed, device=device)
        result, _ = lr_find_recipe(r, steps=steps, start_lr=start_lr, end_lr=end_lr,
                                   rule=rule, progress=not quiet)
        folder = new_run_dir(out, f"lr-find-{r.name}")
        plot = plot_lr_find(result, folder / "plots" / "lr_find.png",
                            title=f"LR range test — {r.name} ({r.optimizer.name}, "
                                  f"batch {r.train.batch_size})")
        result.to_json(folder / "lr_find.json")
        from trainwell.atomic import atomic_write

        atomic_write(folder / "recipe.toml", r.to_toml())
        if quiet:
            print(f"{result.suggestion:.4g}")
            return
        console = make_console()
        console.print(f"[bold]suggested max learning rate: {result.suggestion:.3g}[/bold]")
        console.print(f"rule: {result.rule}")
        extra = f"lowest smoothed loss at lr {result.min_loss_lr:.3g}"
        if result.steepest_lr is not None:
            extra += f"; steepest descent at lr {result.steepest_lr:.3g}"
        console.print(extra + f"; {len(result.lrs)} steps"
                      + (" (stopped: the loss diverged)" if result.diverged else ""))
        if result.note:
            console.print(f"[yellow]note: {result.note}[/yellow]")
        use = (f"--set schedule.max_lr={result.suggestion:.3g}" if r.schedule.name == "onecycle"
               else f"--set optimizer.lr={result.suggestion:.3g}")
        console.print(f"use it: trainwell fit {recipe} {use}")
        console.print(f"plot: {plot}")
