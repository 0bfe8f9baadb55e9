"""``--set section.field=value`` overrides and the difference between two recipes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainwell.config.io import recipe_from_dict
from trainwell.config.schema import SECTIONS, Recipe, UnknownFieldError
from trainwell.config.toml_text import tomllib
from trainwell.errors import ConfigError

__all__ = ["apply_overrides", "recipe_diff"]


# --------------------------------------------------------------------------- overrides
def _parse_literal(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(recipe: Recipe, overrides: Iterable[str]) -> Recipe:
    """A new recipe with ``section.field=value`` overrides applied (the input is unchanged).

    Values are parsed as TOML literals (``5``, ``0.1``, ``true``, ``[300, 100]``,
    ``"text"``); anything else is taken as a plain string (``elu``, ``data/x.npz``).

    Raises:
        ConfigError: for text without ``=``, an unknown section or field (listing the valid
            ones) or a value the field does not accept.

    Example:
        >>> apply_overrides(Recipe(), ["model.activation=elu"]).model.activation
        'elu'
    """
    data = recipe.model_dump()
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", item, "section.field=value, e.g. train.epochs=5")
        value = _parse_literal(text.strip())
        if key in ("name", "description"):
            data[key] = value if isinstance(value, str) else text.strip()
            continue
        section, dot, field = key.partition(".")
        if section not in SECTIONS or not dot:
            raise UnknownFieldError(key, section if not dot else key,
                                    [f"{s}.<field>" for s in SECTIONS] + ["name", "description"],
                                    what="section")
        fields = list(SECTIONS[section].model_fields)
        if field not in fields:
            raise UnknownFieldError(key, field, fields)
        data[section][field] = value
    return recipe_from_dict(data)


def recipe_diff(a: Recipe, b: Recipe, *, ignore: Iterable[str] = ("description",)) -> list[str]:
    """Dotted names of the fields whose values differ between ``a`` and ``b``.

    Example:
        >>> recipe_diff(Recipe(), apply_overrides(Recipe(), ["optimizer.lr=0.1"]))
        ['optimizer.lr']
    """
    fa, fb = a.flat(), b.flat()
    skip = set(ignore)
    return [k for k in fa if k not in skip and fa[k] != fb[k]]
