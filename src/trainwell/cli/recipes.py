"""``trainwell recipes``: list the built-in recipes; ``recipes show NAME`` prints one."""

from __future__ import annotations

import typer

__all__ = ["register"]

recipes_app = typer.Typer(
    help="List the built-in recipes (`trainwell recipes`) or print one as TOML "
         "(`trainwell recipes show NAME`).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@recipes_app.callback()
def _list(ctx: typer.Context) -> None:
    """List the built-in recipes with their one-line descriptions.

    Run one with `trainwell fit NAME`; copy one with `trainwell recipes show NAME > my.toml`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from trainwell.config import builtin_recipes
    from trainwell.console import make_console

    table = Table(title="built-in recipes (trainwell fit NAME)")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    for name, desc in builtin_recipes().items():
        table.add_row(name, desc)
    make_console().print(table)


@recipes_app.command("show")
def show(name: str = typer.Argument(..., help="A built-in recipe name or a recipe file."),
         resolved: bool = typer.Option(False, "--resolved",
                                       help="Print every field with its value, defaults included.")
         ) -> None:
    """Print a recipe's TOML (the file as written, or --resolved with every default)."""
    from pathlib import Path

    from trainwell.config import builtin_path, resolve

    recipe = resolve(name)  # validates, and fails with the list of names when unknown
    if resolved:
        typer.echo(recipe.to_toml(), nl=False)
        return
    path = Path(name) if Path(name).is_file() else builtin_path(name)
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``recipes`` to the ``trainwell`` app."""
    app.add_typer(recipes_app, name="recipes")
