"""Search spaces of ``trainwell tune``: TOML tables of recipe fields → distributions, checked
against the recipe schema before the first trial, and the overrides one Optuna trial suggests.

The format is described in :mod:`trainwell.studies.tune`; the built-in spaces live in
``trainwell/recipes/spaces``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.checks import is_integer, is_number
from trainwell.errors import ConfigError, TrainwellError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
__all__ = ["ParamSpec", "require_optuna", "parse_space", "load_space", "builtin_spaces",
           "suggest_overrides"]

_NUMERIC_KEYS = {"low", "high", "log", "step", "type"}
_HIDDEN_KEYS = {"layers", "units", "log", "same_units"}
_DERIVED = ("model.n_hidden", "model.n_neurons")


def require_optuna() -> Any:
    """Import Optuna, or raise a :class:`TrainwellError` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise TrainwellError('hyperparameter search needs Optuna, an optional extra: '
                             'pip install "trainwell[tune]"') from None
    return optuna


@dataclass
class ParamSpec:
    """One searched field: ``kind`` is float, int, categorical or hidden (depth × width)."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)
    layers: tuple[int, int] | None = None
    units: tuple[int, int] | None = None
    same_units: bool = True


def _literal(value: Any) -> str:
    """A TOML literal for ``apply_overrides``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a recipe value")


def _valid_fields(recipe: Any) -> list[str]:
    return [k for k in recipe.flat() if k not in ("name", "description")]


def _check_value(recipe: Any, path: str, value: Any, where: str) -> None:
    from trainwell.config import apply_overrides

    try:
        apply_overrides(recipe, [f"{path}={_literal(value)}"])
    except ConfigError as exc:
        raise ConfigError(where, value, f"values that {path} accepts ({exc})") from None


def _int_range(where: str, v: Any, minimum: int) -> tuple[int, int]:
    if not (isinstance(v, list) and len(v) == 2 and all(is_integer(x) for x in v)
            and minimum <= v[0] <= v[1]):
        raise ConfigError(where, v, f"[low, high] with integers {minimum} ≤ low ≤ high")
    return int(v[0]), int(v[1])


def _flatten_tables(raw: dict[str, Any], fields: Sequence[str], prefix: str = ""
                    ) -> dict[str, Any]:
    """``{"optimizer": {"lr": {...}}}`` (a TOML ``[optimizer.lr]`` table) → ``{"optimizer.lr":
    {...}}``: a key that is a recipe section rather than a field is a table of its fields."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in fields and any(
                f.startswith(path + ".") for f in fields):
            out.update(_flatten_tables(value, fields, prefix=path + "."))
        else:
            out[path] = value
    return out


def parse_space(raw: Any, recipe: Any, *, source: str = "space") -> list[ParamSpec]:
    """Validate a search space (a dict as read from TOML) against ``recipe``'s schema.

    Raises:
        ConfigError: an unknown field (listing the valid ones), a bad distribution
            (``low < high``, ``log`` needs ``low > 0``, ``step > 0``, non-empty choices), or a
            bound or choice the field itself refuses — before any trial runs.
    """
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(source, raw, 'a table of "section.field" = distribution entries')
    valid = _valid_fields(recipe)
    raw = _flatten_tables(raw, [*valid, *_DERIVED])
    specs: list[ParamSpec] = []
    for path, dist in raw.items():
        where = f"{source}: {path}"
        if isinstance(dist, dict) and path in valid and all(
                isinstance(v, dict) for v in dist.values()) and dist:
            raise ConfigError(where, dist, "a distribution; quote dotted names: "
                              '"optimizer.lr" = {low = 1e-4, high = 0.1, log = true}')
        if path not in valid and path not in _DERIVED:
            raise ConfigError(where, path, ["model.n_hidden", "model.n_neurons", *valid])
        if path == "model.hidden" and isinstance(dist, dict) and (
                "layers" in dist or "units" in dist):
            extra = set(dist) - _HIDDEN_KEYS
            if extra or "layers" not in dist or "units" not in dist:
                raise ConfigError(where, dist, "{layers = [min, max], units = [min, max]} "
                                  "with optional log, same_units")
            layers = _int_range(f"{where}.layers", dist["layers"], 1)
            units = _int_range(f"{where}.units", dist["units"], 1)
            for key in ("log", "same_units"):
                if key in dist and not isinstance(dist[key], bool):
                    raise ConfigError(f"{where}.{key}", dist[key], "true or false")
            specs.append(ParamSpec(path, "hidden", layers=layers, units=units,
                                   log=bool(dist.get("log", False)),
                                   same_units=bool(dist.get("same_units", True))))
            continue
        if isinstance(dist, list) or (isinstance(dist, dict) and set(dist) == {"choices"}):
            choices = dist if isinstance(dist, list) else dist["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(where, choices, "a non-empty list of choices")
            if len({json.dumps(c) for c in choices}) != len(choices):
                raise ConfigError(where, choices, "distinct choices")
            if path not in _DERIVED:
                for c in choices:
                    _check_value(recipe, path, c, where)
            specs.append(ParamSpec(path, "categorical", choices=list(choices)))
            continue
        if not isinstance(dist, dict):
            raise ConfigError(where, dist, "{low = …, high = …[, log = true][, step = …]} or a "
                              "list of choices")
        extra = set(dist) - _NUMERIC_KEYS
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}", sorted(extra)[0],
                              sorted(_NUMERIC_KEYS) + ["choices (alone)"])
        low, high = dist.get("low"), dist.get("high")
        if not (is_number(low) and is_number(high)):
            raise ConfigError(where, dist, "numbers low and high")
        if not low < high:
            raise ConfigError(f"{where}.low", low, f"a number < high ({high})")
        log = dist.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log", log, "true or false")
        if log and low <= 0:
            raise ConfigError(f"{where}.low", low, "a number > 0 (log = true)")
        step = dist.get("step")
        if step is not None and not (is_number(step) and step > 0):
            raise ConfigError(f"{where}.step", step, "a number > 0")
        if step is not None and log:
            raise ConfigError(f"{where}.step", step, "no step with log = true (Optuna refuses it)")
        kind = dist.get("type") or ("int" if is_integer(low) and is_integer(high)
                                    and (step is None or is_integer(step)) else "float")
        if kind not in ("int", "float"):
            raise ConfigError(f"{where}.type", kind, ["int", "float"])
        if kind == "int" and not (is_integer(low) and is_integer(high)):
            raise ConfigError(where, dist, "integer low and high for type = \"int\"")
        if path not in _DERIVED:
            for bound in (low, high):
                _check_value(recipe, path, bound, f"{where} (bound)")
        specs.append(ParamSpec(path, kind, low=low, high=high, log=log, step=step))
    paths = [s.path for s in specs]
    if "model.hidden" in paths and any(p in paths for p in _DERIVED):
        raise ConfigError(source, paths, "either model.hidden or model.n_hidden/n_neurons")
    return specs


def _spaces_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("trainwell") / "recipes" / "spaces"))


def builtin_spaces() -> list[str]:
    """Names of the example search spaces shipped with trainwell."""
    return sorted(p.stem for p in _spaces_dir().glob("*.toml"))


def load_space(name_or_path: str | Path, recipe: Any) -> list[ParamSpec]:
    """Read and validate a search space TOML file (or a built-in space name)."""
    p = Path(name_or_path)
    if not p.is_file():
        q = _spaces_dir() / f"{name_or_path}.toml"
        if not q.is_file():
            raise ConfigError("--space", str(name_or_path),
                              "a search-space .toml file or a built-in space: "
                              + ", ".join(builtin_spaces()))
        p = q
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "invalid TOML", f"valid TOML ({exc})") from None
    return parse_space(raw, recipe, source=p.name)


def suggest_overrides(trial: Any, specs: Sequence[ParamSpec], recipe: Any) -> list[str]:
    """Sample every parameter from ``trial`` and return ``section.field=value`` overrides."""
    out: list[str] = []
    derived: dict[str, int] = {}
    for s in specs:
        if s.kind == "hidden":
            n = trial.suggest_int("model.hidden.layers", s.layers[0], s.layers[1])
            if s.same_units:
                u = trial.suggest_int("model.hidden.units", s.units[0], s.units[1], log=s.log)
                widths = [u] * n
            else:
                widths = [trial.suggest_int(f"model.hidden.units_{i + 1}", s.units[0],
                                            s.units[1], log=s.log) for i in range(n)]
            out.append(f"model.hidden={_literal(widths)}")
            continue
        if s.kind == "categorical":
            labels = [json.dumps(c) for c in s.choices]
            simple = all(isinstance(c, (str, int, float, bool)) for c in s.choices)
            pick = trial.suggest_categorical(s.path, s.choices if simple else labels)
            value = pick if simple else json.loads(pick)
        elif s.kind == "int":
            value = trial.suggest_int(s.path, int(s.low), int(s.high), log=s.log,
                                      step=int(s.step or 1))
        else:
            value = trial.suggest_float(s.path, float(s.low), float(s.high), log=s.log,
                                        step=s.step)
        if s.path in _DERIVED:
            derived[s.path] = int(value)
        else:
            out.append(f"{s.path}={_literal(value)}")
    if derived:
        hidden = list(recipe.model.hidden) or [100]
        n = derived.get("model.n_hidden", len(hidden))
        width = derived.get("model.n_neurons", hidden[0])
        out.append(f"model.hidden={_literal([width] * n)}")
    return out
