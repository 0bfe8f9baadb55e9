"""TOML text of plain values and of a recipe (TOML is read with the standard ``tomllib``)."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the `tomli` backport
    import tomli as tomllib

__all__ = ["tomllib", "to_toml"]


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. [model.args]
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(recipe: Any) -> str:
    """Write ``recipe`` as TOML: top-level keys, then one table per section."""
    data = recipe.model_dump()
    lines = [f"name = {_toml_value(data.pop('name'))}",
             f"description = {_toml_value(data.pop('description'))}"]
    for sec, fields in data.items():
        lines += ["", f"[{sec}]"]
        for key, value in fields.items():
            if value is not None and value != {}:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
