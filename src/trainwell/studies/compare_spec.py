"""Comparison grids: the variants (``--vary field=v1,v2`` lists × base recipes, or a spec file),
the shared data classes, and the built-in comparison specs (``trainwell/recipes/compare``)."""

from __future__ import annotations

import itertools
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.errors import ConfigError
from trainwell.train.rng import parse_seeds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
__all__ = ["Variant", "RunOutcome", "Comparison", "CompareSpec", "parse_vary", "split_values",
           "grid_variants", "load_spec", "spec_variants", "builtin_specs"]

_VARY_HELP = "field=value1,value2,… e.g. model.batch_norm=none,after"


@dataclass
class Variant:
    """One configuration of a comparison.

    Attributes:
        name: short label used in the table, the plots and the run folder names.
        recipe: the validated recipe (its seed is replaced by each comparison seed).
        changes: the fields that make this variant, ``{field: value text}``.
        mc_samples: when > 0, also report the MC-dropout validation accuracy with this many
            stochastic passes (the trained model, no retraining).
    """

    name: str
    recipe: Any
    changes: dict[str, str] = field(default_factory=dict)
    mc_samples: int = 0


@dataclass
class RunOutcome:
    """The numbers of one (variant, seed) run."""

    variant: str
    seed: int
    run_dir: str
    status: str
    epochs: list[dict[str, Any]]
    metric: str
    best: float
    best_epoch: int
    time_per_epoch: float
    total_time: float
    mc_accuracy: float | None = None
    kept_accuracy: float | None = None
    max_lr: float | None = None


@dataclass
class Comparison:
    """What :func:`run_comparison` produced."""

    dir: Path
    rows: list[dict[str, Any]]
    outcomes: list[RunOutcome]
    metric: str

    @property
    def report(self) -> Path:
        return self.dir / "report.html"

    def _repr_html_(self) -> str:
        """Jupyter: one row per variant, best metric mean ± std over its random seeds."""
        import html as _html

        from trainwell.notebook import html_table, section

        rows = [[r["variant"], _fmt_metric(r["best_mean"], r["best_std"], r["metric"]),
                 len(r["seeds"]), r["time_per_epoch"], ", ".join(r["statuses"]),
                 r.get("description") or ""] for r in self.rows]
        header = ["variant", _metric_label(self.metric), "seeds", "s/epoch", "status",
                  "description"]
        where = f"<div>report: <code>{_html.escape(str(self.report))}</code></div>"
        return section(f"Comparison of {len(self.rows)} variants", html_table(header, rows),
                       where if self.report.exists() else "")


def _fmt_metric(mean: float, std: float | None, metric: str) -> str:
    if not math.isfinite(mean):
        return "—"
    if "acc" in metric:
        text = f"{100 * mean:.2f}%"
        return text + (f" ± {100 * std:.2f}" if std is not None else "")
    text = f"{mean:.4f}"
    return text + (f" ± {std:.4f}" if std is not None else "")


def _metric_label(metric: str) -> str:
    return metric.replace("val_", "val ").replace("accuracy", "acc")


# --------------------------------------------------------------------------- parsing
def split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2],"x,y"`` on the commas outside brackets and quotes."""
    out, cur, depth, quote = [], [], 0, ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["model.activation=relu,elu"]`` → ``[("model.activation", ["relu", "elu"])]``.

    Raises:
        ConfigError: for text without ``=``, an empty value, or a field given twice.
    """
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        values = split_values(text) if sep else []
        if not key or not values or any(v == "" for v in values):
            raise ConfigError("--vary", item, _VARY_HELP)
        if any(key == k for k, _ in out):
            raise ConfigError("--vary", item, "each field once (list all its values in one "
                              "--vary)")
        out.append((key, values))
    return out


def _short(field_path: str) -> str:
    return field_path.rsplit(".", 1)[-1]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "variant"


def grid_variants(bases: Sequence[tuple[str, Any]], vary: Sequence[tuple[str, list[str]]],
                  *, overrides: Sequence[str] = ()) -> list[Variant]:
    """Every base recipe × the product of the ``vary`` values, validated before any training.

    Args:
        bases: ``(label, recipe)`` pairs (one per recipe file).
        vary: as returned by :func:`parse_vary`.
        overrides: ``--set`` overrides applied to every variant first.

    Raises:
        ConfigError: an unknown field (listing the valid ones) or a value a field refuses.
    """
    from trainwell.config import apply_overrides

    variants: list[Variant] = []
    for label, base in bases:
        base = apply_overrides(base, list(overrides)) if overrides else base
        # each value alone first, so that the error names the one bad value
        for key, values in vary:
            for v in values:
                apply_overrides(base, [f"{key}={v}"])
        combos = list(itertools.product(*[[(k, v) for v in vals] for k, vals in vary])) or [()]
        for combo in combos:
            recipe = apply_overrides(base, [f"{k}={v}" for k, v in combo])
            if combo:  # the base's description may no longer hold ("ReLU/He" on ELU)
                recipe = recipe.model_copy(update={"description": (
                    f"{label} with " + ", ".join(f"{k} = {v}" for k, v in combo))})
            parts = [f"{_short(k)}={v}" for k, v in combo]
            if len(bases) > 1 or not parts:
                parts.insert(0, label)
            variants.append(Variant(name=",".join(parts), recipe=recipe, changes=dict(combo)))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError("compare", names, "variants with different names (two recipes have "
                          "the same name: rename one)")
    return variants


@dataclass
class CompareSpec:
    """A comparison written down: ``trainwell compare --spec NAME`` runs it."""

    name: str
    description: str
    seeds: list[int]
    variants: list[Variant]
    path: Path | None = None


def _specs_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("trainwell") / "recipes" / "compare"))


def builtin_specs() -> dict[str, str]:
    """``{name: description}`` of the built-in comparison specs."""
    out = {}
    for p in sorted(_specs_dir().glob("*.toml")):
        try:
            out[p.stem] = str(tomllib.loads(p.read_text(encoding="utf-8")).get("description", ""))
        except tomllib.TOMLDecodeError:
            out[p.stem] = "(unreadable)"
    return out


def _spec_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = str(name_or_path).removeprefix("compare_").removesuffix(".toml")
    q = _specs_dir() / f"{stem}.toml"
    if q.is_file():
        return q
    raise ConfigError("--spec", str(name_or_path),
                      "a comparison spec file or a built-in spec: " + ", ".join(builtin_specs()))


def _resolve_relative(name: str, folder: Path | None) -> Any:
    from trainwell.config import resolve

    if folder is not None and (folder / name).is_file():
        return resolve(folder / name)
    return resolve(name)


def load_spec(name_or_path: str | Path) -> CompareSpec:
    """Read a comparison spec (TOML): its seeds and variants, every recipe validated.

    Format::

        name = "fashion_exercise"
        description = "…"
        seeds = [0]
        base = "compare_fashion_swish"      # recipe for variants that name none (optional)
        set = ["train.epochs=10"]           # overrides for every variant (optional)

        [[variants]]
        name = "swish"                      # label in the table
        recipe = "compare_fashion_swish"    # built-in name, or a path relative to the spec
        set = []                            # this variant's overrides (optional)
        mc_samples = 0                      # > 0: also report MC-dropout accuracy

    Raises:
        ConfigError: naming the spec entry and what is accepted.
    """
    from trainwell.config import apply_overrides

    path = _spec_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "invalid TOML", f"valid TOML ({exc})") from None
    allowed = {"name", "description", "seeds", "base", "set", "variants"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{path.name}: {key}", key, sorted(allowed))
    common = list(raw.get("set", []))
    folder = path.parent
    variants: list[Variant] = []
    entries = raw.get("variants", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path.name}: variants", entries, "a list of [[variants]] tables")
    for i, entry in enumerate(entries):
        where = f"{path.name}: variants[{i}]"
        extra = set(entry) - {"name", "recipe", "set", "mc_samples"}
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}", sorted(extra)[0],
                              ["name", "recipe", "set", "mc_samples"])
        recipe_name = entry.get("recipe", raw.get("base"))
        if not recipe_name:
            raise ConfigError(f"{where}.recipe", None, "a recipe name or path (or a top-level "
                              "base)")
        recipe = _resolve_relative(str(recipe_name), folder)
        sets = common + list(entry.get("set", []))
        recipe = apply_overrides(recipe, sets) if sets else recipe
        name = str(entry.get("name") or recipe.name)
        mc = entry.get("mc_samples", 0)
        if not isinstance(mc, int) or mc < 0:
            raise ConfigError(f"{where}.mc_samples", mc, "an integer ≥ 0")
        changes = {"recipe": str(recipe_name)} | {
            k.strip(): v.strip() for k, _, v in (s.partition("=") for s in entry.get("set", []))}
        variants.append(Variant(name=name, recipe=recipe, changes=changes, mc_samples=mc))
    seeds = parse_seeds(raw.get("seeds", [0]))
    return CompareSpec(name=str(raw.get("name", path.stem)),
                       description=str(raw.get("description", "")), seeds=seeds,
                       variants=variants, path=path)


def spec_variants(spec: CompareSpec, overrides: Sequence[str] = ()) -> list[Variant]:
    """The spec's variants with command-line ``--set`` overrides applied last."""
    from trainwell.config import apply_overrides

    if not overrides:
        return list(spec.variants)
    return [Variant(v.name, apply_overrides(v.recipe, list(overrides)), dict(v.changes),
                    v.mc_samples) for v in spec.variants]
