"""Options shared by the commands that train: ``--set``, ``--seed``, ``--device``, ``--out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["cli_overrides", "recipe_from_cli", "check_out"]


def cli_overrides(sets: list[str] | None, *, seed: int | None = None,
                  device: str | None = None) -> list[str]:
    """``--set`` values plus ``--seed``/``--device`` as the recipe overrides they stand for."""
    overrides = list(sets or [])
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    if device is not None:
        overrides.append(f'train.device="{device}"')
    return overrides


def recipe_from_cli(recipe: str, sets: list[str] | None, *, seed: int | None = None,
                    device: str | None = None) -> Any:
    """The recipe named on the command line with ``--set``, ``--seed`` and ``--device`` applied."""
    from trainwell.config import apply_overrides, resolve

    overrides = cli_overrides(sets, seed=seed, device=device)
    r = resolve(recipe)
    return apply_overrides(r, overrides) if overrides else r


def check_out(out: Path | str | None) -> None:
    """Refuse an ``--out`` that names an existing file, before any work is done."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        from trainwell.errors import ConfigError

        raise ConfigError("--out", str(out), "a folder for the results (that path is a file)")

