"""What each recipe field accepts, in the words every error message and docs/recipes.md use."""

from __future__ import annotations

from trainwell.checks import DEVICES
from trainwell.config.fields import _bounds_text, _choices_of, _names
from trainwell.config.schema import _MAX_LR_ACCEPTED, SECTIONS, Recipe

__all__ = ["accepted_values"]


def accepted_values(path: str) -> str:
    """What field ``path`` (``"section.field"``) accepts, in words (used in errors and docs)."""
    if path in ("name", "description"):
        info = Recipe.model_fields[path]
        return "letters, digits, '-', '_' or '.' (no spaces)" if path == "name" else "a string"
    section, _, field = path.partition(".")
    cls = SECTIONS[section]
    info = cls.model_fields[field]
    choices = _choices_of(info)
    if choices is not None:
        return "one of " + ", ".join(choices[0])
    special = {
        "data.dataset": f"one of {', '.join(_names('dataset'))} or a path to a .npz/.csv file",
        "data.validation": "an integer count ≥ 0 or a fraction in (0, 1)",
        "data.classes": "a list of class indices or names",
        "model.hidden": ("a list of integers ≥ 1, e.g. [300, 100], or {layers = N, units = U} "
                         "for N layers of U units"),
        "train.device": DEVICES,
        "train.compile": "true, false or \"auto\"",
        "schedule.boundaries": "a list of increasing epochs > 0",
        "schedule.values": "a list of rates > 0, one more than boundaries",
        "schedule.max_lr": _MAX_LR_ACCEPTED,
    }
    if path in special:
        return special[path]
    ann = info.annotation
    text = str(ann)
    if ann is bool:
        return "true or false"
    if "int" in text and "float" not in text:
        return _bounds_text(info, "an integer")
    if "float" in text:
        return _bounds_text(info, "a number")
    return "a string"
