"""The built-in recipes shipped in ``trainwell/recipes`` and name-or-path resolution."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from trainwell.config.io import load_recipe
from trainwell.config.schema import Recipe
from trainwell.config.toml_text import tomllib
from trainwell.errors import ConfigError

__all__ = ["builtin_path", "builtin_recipes", "resolve", "resolve_recipe"]


# --------------------------------------------------------------------------- built-ins
def _recipes_dir() -> Path:
    return Path(str(resources.files("trainwell") / "recipes"))


def builtin_path(name: str) -> Path:
    """The file of built-in recipe ``name``.

    Raises:
        ConfigError: listing the built-in names when ``name`` is not one.
    """
    p = _recipes_dir() / f"{name}.toml"
    if not p.is_file():
        raise ConfigError("recipe", name, list(builtin_recipes()))
    return p


def builtin_recipes() -> dict[str, str]:
    """``{name: description}`` of every built-in recipe, sorted by name."""
    out: dict[str, str] = {}
    for p in sorted(_recipes_dir().glob("*.toml")):
        try:
            desc = tomllib.loads(p.read_text(encoding="utf-8")).get("description", "")
        except tomllib.TOMLDecodeError:
            desc = "(unreadable)"
        out[p.stem] = str(desc)
    return out


def resolve(name_or_path: str | Path) -> Recipe:
    """A recipe from a file path or a built-in name (``"default"``, ``"selu"``, ...).

    A built-in recipe keeps its file name as ``name``.

    Raises:
        ConfigError: when it is neither an existing file nor a built-in name.
    """
    text = str(name_or_path)
    p = Path(text)
    if p.is_file():
        return load_recipe(p)
    if p.suffix == "" and (_recipes_dir() / f"{text}.toml").is_file():
        return load_recipe(_recipes_dir() / f"{text}.toml")
    if p.suffix == ".toml" or "/" in text or "\\" in text:
        raise ConfigError("recipe", text, "an existing .toml file or a built-in recipe name")
    raise ConfigError("recipe", text,
                      "a path to a .toml file or a built-in recipe: "
                      + ", ".join(builtin_recipes()))


#: ``resolve`` under a name that reads well at the package top level (``trainwell.resolve_recipe``).
resolve_recipe = resolve
