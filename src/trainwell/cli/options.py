"""The options many commands share, declared once: ``--set``, ``--out``, ``--quiet``, ``--seed``,
``--device``. A command writes ``out: options.Out = Path("runs")``; one whose option means
something narrower passes its own help (``options.quiet("print only the table")``), never its
own flag names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trainwell.checks import DEVICES

__all__ = ["Sets", "Out", "Quiet", "Seed", "Device", "sets", "out", "quiet", "seed", "device",
           "DEVICE_HELP", "SET_HELP"]

SET_HELP = ("Override a recipe field, e.g. --set train.epochs=5 --set model.hidden=[300,100]. "
            "Values are TOML literals; other text is a string. Repeatable.")
DEVICE_HELP = f"{DEVICES} (overrides train.device)."


def sets(help: str = SET_HELP) -> Any:
    return typer.Option("--set", "-s", metavar="SECTION.FIELD=VALUE", help=help)


def out(help: str = "Folder holding the run directories.", metavar: str = "DIR") -> Any:
    return typer.Option("--out", "-o", metavar=metavar, help=help)


def quiet(help: str = "Print nothing but errors (scripts, CI).") -> Any:
    return typer.Option("--quiet", "-q", help=help)


def seed(help: str = "Random seed (overrides train.seed).") -> Any:
    return typer.Option("--seed", help=help)


def device() -> Any:
    return typer.Option("--device", help=DEVICE_HELP)


Sets = Annotated[list[str] | None, sets()]
Out = Annotated[Path, out()]
Quiet = Annotated[bool, quiet()]
Seed = Annotated[int | None, seed()]
Device = Annotated[str | None, device()]
