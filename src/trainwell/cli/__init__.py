"""The ``trainwell`` command line (typer + rich).

Each command group lives in its own module ``trainwell/cli/<name>.py`` exposing
``register(app)``; the modules named in :data:`COMMANDS` are imported here, and one that does
not exist (a feature not installed) is skipped.

Errors a user can fix (:class:`~trainwell.errors.TrainwellError`: bad recipe values, missing
data, unusable checkpoints) are printed as one ``error: <message>`` line on stderr with exit
code 2 and no traceback. trainwell's warnings are printed the same way, as one
``warning: <message>`` line on stderr (:mod:`trainwell.cli.console_warnings`).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from trainwell import __version__
from trainwell.cli.console_warnings import one_line_warnings
from trainwell.errors import TrainwellError

__all__ = ["app", "main", "COMMANDS", "fail"]

#: Command modules imported (in this order) from ``trainwell.cli``.
COMMANDS = ["fit", "evaluate", "predict", "recipes", "data", "diagnose", "transfer", "study",
            "export", "lrfind", "tune", "compare", "advise"]

EXIT_USER_ERROR = 2


def fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    """Print ``error: message`` on stderr and exit with ``code`` (default 2)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _pydantic_message(exc: Any) -> str:
    from trainwell.config.io import _problems

    problems = _problems(exc, None)
    return "\n".join(str(p) for p in problems) if problems else str(exc).splitlines()[0]


class _TrainwellGroup(TyperGroup):
    """Runs the commands; user errors and trainwell's warnings become one line on stderr."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            with one_line_warnings():
                return super().invoke(ctx)
        except TrainwellError as exc:
            from trainwell.cli.launch import record_worker_error

            if record_worker_error(exc):  # a torchrun worker: the launcher prints it once
                raise typer.Exit(EXIT_USER_ERROR) from None
            fail(str(exc))
        except Exception as exc:
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):  # never show pydantic's own dump
                fail(_pydantic_message(exc))
            raise


app = typer.Typer(
    cls=_TrainwellGroup,
    name="trainwell",
    help="Train deep neural networks well: recipes with good defaults, learning curves, "
         "gradient diagnosis and reports.\n\n"
         "Start with `trainwell recipes` and `trainwell fit default`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trainwell {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version,
                                       is_eager=True, help="Print the version and exit.")
          ) -> None:
    """Train deep neural networks well."""


def _register_all() -> list[str]:
    loaded = []
    for name in COMMANDS:
        module_name = f"{__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that command is not part of this installation
                continue
            raise
        module.register(app)
        loaded.append(name)
    return loaded


LOADED = _register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``trainwell`` console script.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it) before any command imports
    torch; ``import trainwell`` does the same for the Python API.
    """
    # OpenMP threads that sleep instead of spinning while they wait. On a small CPU shared
    # with other processes, spinning threads made `trainwell fit default` 7-30× slower (1.2 s
    # vs 15-60 s per epoch on 2 cores). On an idle CPU spinning can be a little faster: a
    # value the user sets, e.g. OMP_WAIT_POLICY=ACTIVE, is kept. Commands import torch only
    # when they run, so this still comes first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app(args=argv if argv is not None else sys.argv[1:], prog_name="trainwell")
