"""Field helpers of the recipe schema: registry names, choice fields and the words of bounds.

The names a choice field accepts come from the library's registries (activations, initializers,
optimizers, schedules, tasks, datasets), imported on first use so that loading a recipe stays
cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import annotated_types as at
from pydantic import Field

# --------------------------------------------------------------------------- registries
# The registry that owns each kind of name; imported on first use so that loading a recipe
# stays cheap.
_REGISTRIES: dict[str, tuple[str, str]] = {
    "activation": ("trainwell.nn", "ACTIVATIONS"),
    "initializer": ("trainwell.nn", "INITIALIZERS"),
    "optimizer": ("trainwell.optim", "OPTIMIZERS"),
    "schedule": ("trainwell.optim", "SCHEDULES"),
    "task": ("trainwell.tasks", "TASKS"),
    "dataset": ("trainwell.data", "DATASETS"),
}


def _registry(kind: str) -> Any:
    module_name, attr = _REGISTRIES[kind]
    return getattr(importlib.import_module(module_name), attr)


def _names(kind: str) -> list[str]:
    return list(_registry(kind).names())


def _canonical(kind: str, value: str) -> str | None:
    return _registry(kind).canonical(value)


# --------------------------------------------------------------------------- field helpers
def _choice(default: Any, description: str, *, registry: str | None = None,
            static: Sequence[str] = ()) -> Any:
    """A string field whose value must be one of ``static`` or a name of ``registry``."""
    return Field(default, description=description,
                 json_schema_extra={"registry": registry, "static": list(static)})


def _choices_of(info: Any) -> tuple[list[str], str | None] | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "static" not in extra:
        return None
    static = list(extra["static"])
    registry = extra.get("registry")
    return static + (_names(registry) if registry else []), registry


def _fmt(x: Any) -> str:
    return repr(x) if isinstance(x, str) else str(x)


def _bounds_text(info: Any, noun: str) -> str:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, at.Gt):
            lo = ("(", m.gt)
        elif isinstance(m, at.Ge):
            lo = ("[", m.ge)
        elif isinstance(m, at.Lt):
            hi = (")", m.lt)
        elif isinstance(m, at.Le):
            hi = ("]", m.le)
    if lo and hi:
        return f"{noun} in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo:
        return f"{noun} {'>' if lo[0] == '(' else '≥'} {lo[1]}"
    if hi:
        return f"{noun} {'<' if hi[0] == ')' else '≤'} {hi[1]}"
    return noun
