"""Recipes from and to TOML: parse, validate (one ConfigError per problem), save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainwell.config.accepted import accepted_values
from trainwell.config.schema import _TOP_LEVEL, SECTIONS, Recipe, UnknownFieldError
from trainwell.config.toml_text import to_toml, tomllib
from trainwell.errors import ConfigError

__all__ = ["recipe_from_dict", "loads_recipe", "load_recipe", "save_recipe", "to_toml"]


def _raw_value(raw: Any, loc: tuple[str, ...]) -> Any:
    cur = raw
    for part in loc[:2]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def _problems(exc: ValidationError, raw: Any) -> list[ConfigError]:
    problems: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        original = ctx.get("error")
        if isinstance(original, ConfigError):
            problems.append(original)
            continue
        if err["type"] == "extra_forbidden":
            if len(loc) == 1:
                problems.append(UnknownFieldError(loc[0], loc[0], list(_TOP_LEVEL),
                                                  what="section or field"))
            else:
                sec = loc[0]
                problems.append(UnknownFieldError(f"{sec}.{loc[1]}", loc[1],
                                                  list(SECTIONS[sec].model_fields)))
            continue
        if len(loc) == 1 and loc[0] in SECTIONS:
            fields = ", ".join(SECTIONS[loc[0]].model_fields)
            problems.append(ConfigError(loc[0], err.get("input"), f"a table with fields {fields}"))
            continue
        if not loc:
            problems.append(ConfigError("recipe", raw, "a table of sections"))
            continue
        path = loc[0] if len(loc) == 1 else f"{loc[0]}.{loc[1]}"
        value = _raw_value(raw, loc)
        try:
            accepted = accepted_values(path)
        except (KeyError, ValueError):
            accepted = err["msg"]
        if err["type"] == "missing":
            value = None
        problems.append(ConfigError(path, value, accepted))
    # one problem per field: pydantic may report a union field several times
    seen: dict[str, ConfigError] = {}
    for p in problems:
        seen.setdefault(p.field, p)
    return list(seen.values())


def _raise_problems(problems: list[ConfigError]) -> None:
    first = problems[0]
    if len(problems) > 1:
        rest = "\n".join(str(p) for p in problems[1:])
        first.args = (f"{first.args[0]}\n{rest}",)
    first.problems = problems  # type: ignore[attr-defined]
    raise first


def recipe_from_dict(raw: Any) -> Recipe:
    """Validate a plain dict (e.g. parsed TOML) into a :class:`Recipe`.

    Raises:
        ConfigError: one per problem; the first is raised and its message lists every problem
            (one line each, ``section.field: received ...; expected ...``); all of them are in
            its ``problems`` attribute.
    """
    if not isinstance(raw, dict):
        raise ConfigError("recipe", raw, "a table of sections")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        _raise_problems(_problems(exc, raw))
        raise  # unreachable


# --------------------------------------------------------------------------- TOML
def loads_recipe(text: str, *, source: str = "<recipe>") -> Recipe:
    """Parse and validate TOML ``text``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "invalid TOML", f"valid TOML ({exc})") from None
    return recipe_from_dict(raw)


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe file.

    Example:
        >>> from trainwell.config import builtin_path
        >>> load_recipe(builtin_path("default")).name
        'default'
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError("recipe", str(path), "an existing .toml file or a built-in recipe name")
    if p.suffix.lower() != ".toml":  # e.g. a data file given where the recipe goes
        raise ConfigError("recipe", str(path), _RECIPE_FILE)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("recipe", str(path), _RECIPE_FILE) from None
    return loads_recipe(text, source=str(p))


_RECIPE_FILE = "a recipe .toml text file (or a built-in recipe name: trainwell recipes)"


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write ``recipe`` to ``path`` as TOML (creating parent folders), atomically."""
    from trainwell.atomic import atomic_write

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, to_toml(recipe))
    return p
