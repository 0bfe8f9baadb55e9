"""Recipes: the typed schema, TOML I/O, ``--set`` overrides, built-in recipes, the docs table.

Example:
    >>> r = apply_overrides(Recipe(), ["model.hidden=[64]", "train.epochs=3"])
    >>> r.model.hidden, r.train.epochs
    ([64], 3)
    >>> recipe_diff(Recipe(), r)
    ['model.hidden', 'train.epochs']
"""

from trainwell.config.accepted import accepted_values
from trainwell.config.builtins import builtin_path, builtin_recipes, resolve, resolve_recipe
from trainwell.config.io import load_recipe, loads_recipe, recipe_from_dict, save_recipe
from trainwell.config.overrides import apply_overrides, recipe_diff
from trainwell.config.schema import (
    SECTIONS,
    AugmentSection,
    DataSection,
    ModelSection,
    OptimizerSection,
    Recipe,
    RegularizationSection,
    ScheduleSection,
    TrainSection,
    UnknownFieldError,
    schedule_params,
)
from trainwell.config.toml_text import to_toml

__all__ = [
    "Recipe",
    "DataSection",
    "ModelSection",
    "RegularizationSection",
    "OptimizerSection",
    "ScheduleSection",
    "TrainSection",
    "AugmentSection",
    "SECTIONS",
    "schedule_params",
    "UnknownFieldError",
    "recipe_from_dict",
    "load_recipe",
    "loads_recipe",
    "save_recipe",
    "to_toml",
    "apply_overrides",
    "resolve",
    "resolve_recipe",
    "builtin_recipes",
    "builtin_path",
    "recipe_diff",
    "accepted_values",
    "reference_markdown",
]


def __getattr__(name: str):  # the docs generator is imported only when asked for
    if name == "reference_markdown":
        from trainwell.config.docs import reference_markdown

        return reference_markdown
    raise AttributeError(f"module 'trainwell.config' has no attribute {name!r}")
