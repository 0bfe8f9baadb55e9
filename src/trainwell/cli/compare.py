"""`trainwell compare`: run recipe variants × seeds side by side; table, curves, HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainwell.cli import options

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        recipes: Annotated[list[str] | None, typer.Argument(
            metavar="RECIPE...",
            help="one recipe (varied with --vary) or several recipes (each a variant)")] = None,
        vary: Annotated[list[str] | None, typer.Option(
            "--vary", metavar="SECTION.FIELD=V1,V2",
            help="field=v1,v2,… — every combination becomes a variant (repeatable)")
        ] = None,
        spec: Annotated[str | None, typer.Option(
            help="a comparison spec (TOML listing variants), e.g. fashion_exercise")] = None,
        seeds: Annotated[str | None, typer.Option(
            help="seeds, e.g. 0,1,2: each variant is trained once per seed (default 0)")] = None,
        set_: Annotated[list[str] | None, options.sets(
            "override a field in every variant: section.field=value")] = None,
        out: Annotated[Path, options.out("folder that receives the comparison")] = Path("runs"),
        name: Annotated[str | None, typer.Option(help="name of the comparison folder")] = None,
        mc_samples: Annotated[int, typer.Option(
            help="also score every variant with MC dropout using this many passes (0 = off)")
        ] = 0,
        device: options.Device = None,
        quiet: Annotated[bool, options.quiet("print only the table")] = False,
        jobs: Annotated[int, typer.Option(
            "--jobs", "-j", metavar="N",
            help="train N runs at the same time, each in its own process (same numbers as "
                 "one after the other; the cores are shared)")] = 1,
    ) -> None:
        """Train every variant (× every seed) and compare best validation accuracy (mean ± std),
        epoch of the best, time per epoch and total time; writes overlaid learning curves and a
        self-contained report.html. Variants sharing a seed share data order and initial
        weights where their architectures allow.

        Examples:

            trainwell compare default --vary model.batch_norm=none,after --seeds 0,1

            trainwell compare a.toml b.toml

            trainwell compare --spec fashion_exercise

            trainwell compare default --vary optimizer.name=sgd,adam --seeds 0-3 --jobs 4
        """
        from trainwell.cli.common import check_out, recipe_from_cli
        from trainwell.console import make_console
        from trainwell.errors import ConfigError
        from trainwell.studies.compare import (
            grid_variants,
            load_spec,
            parse_seeds,
            parse_vary,
            print_table,
            run_comparison,
            spec_variants,
        )
        from trainwell.studies.jobs import check_jobs

        check_out(out)
        check_jobs(jobs)
        console = make_console()
        overrides = list(set_ or [])
        if device is not None:
            overrides.append(f"train.device={device}")
        if mc_samples < 0:
            raise ConfigError("--mc-samples", mc_samples, "an integer ≥ 0")
        axes = parse_vary(vary or [])
        description = ""
        if spec is not None:
            if recipes:
                raise ConfigError("--spec", spec, "either a spec or recipes, not both")
            s = load_spec(spec)
            variants = spec_variants(s, overrides)
            if axes:  # every spec variant × the --vary grid, keeping its MC setting
                grid = []
                for v in variants:
                    for g in grid_variants([(v.name, v.recipe)], axes):
                        g.name, g.mc_samples = f"{v.name},{g.name}", v.mc_samples
                        g.changes = {**v.changes, **g.changes}
                        grid.append(g)
                variants = grid
            run_seeds = parse_seeds(seeds) if seeds else s.seeds
            label, description = name or s.name, s.description
        else:
            if not recipes:
                raise ConfigError("RECIPES", "nothing", "a recipe with --vary, several recipes, "
                                  "or --spec NAME")
            # every recipe and --seeds are checked first: a misspelt recipe is named as such
            loaded = [recipe_from_cli(r, None) for r in recipes]
            bases = [(r.name, r) for r in loaded]
            run_seeds = parse_seeds(seeds) if seeds else [0]
            if len(recipes) == 1 and not axes:
                raise ConfigError("--vary", "nothing", "at least one field=v1,v2 to vary (or "
                                  "several recipes)")
            variants = grid_variants(bases, axes, overrides=overrides)
            label = name or (bases[0][0] if len(bases) == 1 else "recipes")
        if mc_samples:
            for v in variants:
                v.mc_samples = v.mc_samples or mc_samples
        if not quiet:
            console.print(f"[bold]{len(variants)} variants × {len(run_seeds)} seeds = "
                          f"{len(variants) * len(run_seeds)} runs[/bold]: "
                          + ", ".join(v.name for v in variants))
        comparison = run_comparison(variants, seeds=run_seeds, out=out, name=label,
                                    quiet=quiet, description=description, console=console,
                                    jobs=jobs)
        print_table(comparison, console)
        console.print(f"report: {comparison.report}")
