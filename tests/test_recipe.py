"""Recipes: defaults, validation messages generated from the schema, TOML, overrides."""

from __future__ import annotations

from pathlib import Path

import annotated_types as at
import pytest
import tomllib

from trainwell.config.fields import _choices_of
from trainwell.errors import ConfigError
from trainwell.recipe import (
    SECTIONS,
    Recipe,
    UnknownFieldError,
    apply_overrides,
    builtin_recipes,
    load_recipe,
    loads_recipe,
    recipe_diff,
    recipe_from_dict,
    reference_markdown,
    resolve,
    save_recipe,
    to_toml,
)

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_follow_table_11_3():
    r = Recipe()
    assert r.model.init == "auto"  # He for ReLU through the auto match
    assert r.model.activation == "relu"
    assert r.model.batch_norm == "none"
    assert r.train.early_stopping is True
    assert r.optimizer.name in ("nesterov", "adamw")
    assert r.schedule.name in ("onecycle", "performance")
    assert r.model.hidden == [300, 100]
    assert r.model.bn_momentum == 0.99


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_validates_and_has_a_description(name):
    recipe = resolve(name)
    assert recipe.name == name
    assert recipe.description.strip() and "\n" not in recipe.description
    # round trip through TOML gives the same recipe
    assert loads_recipe(recipe.to_toml()) == recipe


def test_required_builtin_recipes_exist():
    names = set(builtin_recipes())
    for n in ["default", "selu", "batchnorm", "power", "exponential", "piecewise",
              "performance", "onecycle", "dropout", "mc_dropout", "max_norm", "l1_sparse",
              "low_latency", "risk_sensitive", "clipping"]:
        assert n in names


def test_selu_recipe_is_self_normalizing():
    r = resolve("selu")
    assert (r.model.activation, r.model.init, r.model.batch_norm) == ("selu", "lecun", "none")
    assert r.data.standardize and r.optimizer.name == "nadam"
    assert r.schedule.name == "performance"


def test_toml_round_trip_keeps_every_field(tmp_path):
    r = apply_overrides(Recipe(), [
        'name=trip', 'description="a \\"quoted\\" line ✓"', "model.hidden=[7, 5, 3]",
        "schedule.name=piecewise", "schedule.boundaries=[2, 4.5]",
        "schedule.values=[0.1, 0.01, 0.001]", "optimizer.epsilon=1e-09", "data.classes=[0, 3]",
        "data.validation=0.2", "regularization.l2=1e-4", "train.device=cpu"])
    path = save_recipe(r, tmp_path / "sub" / "r.toml")
    again = load_recipe(path)
    assert again == r
    assert again.description == 'a "quoted" line ✓'
    assert again.schedule.boundaries == [2, 4.5] and again.data.validation == 0.2
    # the file is plain TOML a person can read
    raw = tomllib.loads(path.read_text())
    assert raw["model"]["hidden"] == [7, 5, 3]
    assert "decay_steps" not in raw["schedule"]  # unset fields are omitted


def test_overrides_parse_toml_literals_with_string_fallback():
    r = apply_overrides(Recipe(), ["model.activation=ELU", "train.epochs=5",
                                   "model.hidden=[300,100,50]", "train.shuffle=false",
                                   "optimizer.lr=0.003", "data.dataset=some/file.npz"])
    assert r.model.activation == "elu"  # canonical registry name
    assert r.train.epochs == 5 and isinstance(r.train.epochs, int)
    assert r.model.hidden == [300, 100, 50]
    assert r.train.shuffle is False
    assert r.optimizer.lr == 0.003
    assert r.data.dataset == "some/file.npz"
    assert Recipe().train.epochs != 5  # the input recipe is unchanged


def test_override_of_unknown_field_lists_the_section_fields():
    with pytest.raises(UnknownFieldError) as info:
        apply_overrides(Recipe(), ["train.epoch=3"])
    msg = str(info.value)
    assert msg.startswith("train.epoch: unknown field")
    assert "did you mean epochs" in msg
    for f in SECTIONS["train"].model_fields:
        assert f in msg


def test_override_of_unknown_section_lists_sections():
    with pytest.raises(ConfigError) as info:
        apply_overrides(Recipe(), ["modle.hidden=[3]"])
    for s in SECTIONS:
        assert s in str(info.value)


def test_override_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides(Recipe(), ["train.epochs"])


def test_unknown_key_in_toml_names_section_and_valid_fields():
    with pytest.raises(ConfigError) as info:
        loads_recipe("[model]\nhiden = [3]\n")
    assert str(info.value).startswith("model.hiden: unknown field (did you mean hidden?)")
    assert "activation" in str(info.value)
    with pytest.raises(ConfigError, match="optimiser: unknown section"):
        loads_recipe("[optimiser]\nlr = 0.1\n")


def test_several_problems_are_each_reported_on_their_own_line():
    with pytest.raises(ConfigError) as info:
        recipe_from_dict({"model": {"activation": "relu6"}, "train": {"epochs": 0}})
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert {e.field for e in info.value.problems} == {"model.activation", "train.epochs"}


def test_invalid_toml_is_a_config_error():
    with pytest.raises(ConfigError, match="valid TOML"):
        loads_recipe("[model\n")


# ---- error messages generated from the schema -------------------------------------------
def _numeric_cases():
    """For every bounded numeric field: a value just outside each bound."""
    cases = []
    for sec, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            for m in info.metadata:
                if isinstance(m, at.Gt):
                    cases.append((f"{sec}.{name}", m.gt, f"{m.gt}"))
                elif isinstance(m, at.Ge):
                    cases.append((f"{sec}.{name}", m.ge - 1, f"{m.ge}"))
                elif isinstance(m, at.Lt):
                    cases.append((f"{sec}.{name}", m.lt, f"{m.lt}"))
                elif isinstance(m, at.Le):
                    cases.append((f"{sec}.{name}", m.le + 1, f"{m.le}"))
    return cases


def _choice_fields():
    out = []
    for sec, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            if _choices_of(info) is not None:
                out.append(f"{sec}.{name}")
    return out


NUMERIC_CASES = _numeric_cases()
CHOICE_FIELDS = _choice_fields()


def test_schema_has_the_expected_bounds():
    paths = {c[0] for c in NUMERIC_CASES}
    for p in ["optimizer.lr", "regularization.dropout", "optimizer.momentum", "train.epochs",
              "train.batch_size", "optimizer.clip_norm", "regularization.l2"]:
        assert p in paths
    for p in ["model.activation", "model.init", "optimizer.name", "schedule.name",
              "model.task", "model.batch_norm"]:
        assert p in CHOICE_FIELDS


@pytest.mark.parametrize("path,value,bound", NUMERIC_CASES,
                         ids=[f"{c[0]}={c[1]}" for c in NUMERIC_CASES])
def test_out_of_range_value_names_field_value_and_bound(path, value, bound):
    sec, field = path.split(".")
    with pytest.raises(ConfigError) as info:
        recipe_from_dict({sec: {field: value}})
    err = info.value
    assert err.field == path
    assert str(err).startswith(f"{path}: received {value!r}; expected ")
    assert bound in str(err).split("expected ")[1]


@pytest.mark.parametrize("path", CHOICE_FIELDS)
def test_unknown_name_lists_every_accepted_name(path):
    sec, field = path.split(".")
    with pytest.raises(ConfigError) as info:
        recipe_from_dict({sec: {field: "no_such_thing"}})
    err = info.value
    assert err.field == path
    assert str(err).startswith(f"{path}: received 'no_such_thing'; expected one of ")
    options, _ = _choices_of(SECTIONS[sec].model_fields[field])
    for name in options:
        assert name in str(err)


def test_activation_error_lists_the_registry():
    from trainwell.nn import ACTIVATIONS

    with pytest.raises(ConfigError) as info:
        recipe_from_dict({"model": {"activation": "relu6"}})
    assert str(info.value) == ("model.activation: received 'relu6'; expected one of "
                               + ", ".join(ACTIVATIONS.names()))


@pytest.mark.parametrize("path,value", [
    ("train.epochs", "ten"), ("optimizer.lr", "fast"), ("train.shuffle", "maybe"),
    ("model.hidden", "wide"), ("model.hidden", [300, 0]), ("data.validation", 1.5),
    ("data.validation", -3), ("model.activation", 3), ("train.device", "gpu9"),
    ("data.dataset", "imagenet"), ("name", "has space"),
])
def test_wrong_type_names_the_field(path, value):
    if "." in path:
        sec, field = path.split(".")
        raw = {sec: {field: value}}
    else:
        raw = {path: value}
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(raw)
    assert info.value.field == path
    assert f"received {value!r}" in str(info.value)
    assert "expected" in str(info.value)


def test_piecewise_needs_one_more_value_than_boundaries():
    with pytest.raises(ConfigError, match="schedule.values"):
        recipe_from_dict({"schedule": {"name": "piecewise", "boundaries": [5],
                                       "values": [0.1]}})
    with pytest.raises(ConfigError, match="schedule.boundaries"):
        recipe_from_dict({"schedule": {"name": "piecewise"}})


def test_other_schedules_parameters_are_kept_but_not_passed():
    r = apply_overrides(resolve("power"), ["schedule.name=exponential"])
    assert r.schedule.power == 1.0
    assert r.schedule.params() == {"decay_steps": 8600}


def test_npz_dataset_requires_a_path():
    with pytest.raises(ConfigError, match="data.path"):
        recipe_from_dict({"data": {"dataset": "npz"}})
    assert recipe_from_dict({"data": {"dataset": "x.npz"}}).data.dataset == "x.npz"


def test_resolve_unknown_name_lists_builtins():
    with pytest.raises(ConfigError) as info:
        resolve("no_such_recipe")
    assert "default" in str(info.value) and "selu" in str(info.value)
    with pytest.raises(ConfigError, match="existing .toml"):
        resolve("missing/file.toml")


def test_recipe_diff_lists_changed_fields_only():
    a = resolve("default")
    b = apply_overrides(a, ["optimizer.lr=0.01", "model.hidden=[10]", "description=x"])
    assert recipe_diff(a, b) == ["model.hidden", "optimizer.lr"]
    assert recipe_diff(a, a) == []


def test_to_toml_is_stable():
    assert to_toml(Recipe()) == to_toml(loads_recipe(to_toml(Recipe())))


def test_docs_recipes_md_is_current():
    current = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert current == reference_markdown(), \
        "regenerate with: .venv/bin/python -m trainwell.config.docs > docs/recipes.md"


def test_reference_documents_every_field():
    text = reference_markdown()
    for sec, cls in SECTIONS.items():
        assert f"## [{sec}]" in text
        for name in cls.model_fields:
            assert f"| `{name}` |" in text


@pytest.mark.parametrize("value", [0, -0.5, "fast", True, [1.0], float("nan")])
def test_max_lr_accepts_a_positive_number_or_auto_only(value):
    with pytest.raises(ConfigError) as info:
        recipe_from_dict({"schedule": {"max_lr": value}})
    assert info.value.field == "schedule.max_lr"
    assert str(info.value).endswith(
        'expected a number > 0 or "auto" (the LR finder\'s suggestion)')


def test_max_lr_auto_round_trips_and_numbers_stay_numbers():
    from trainwell.recipe import to_toml

    auto = recipe_from_dict({"schedule": {"max_lr": "Auto"}})
    assert auto.schedule.max_lr == "auto" and auto.schedule.params()["max_lr"] == "auto"
    assert loads_recipe(to_toml(auto)).schedule.max_lr == "auto"
    assert recipe_from_dict({"schedule": {"max_lr": 2}}).schedule.max_lr == 2.0
    assert recipe_from_dict({}).schedule.max_lr is None


def test_a_non_toml_file_as_recipe_is_one_config_error(tmp_path):
    import numpy as np

    np.savez(tmp_path / "x5.npz", x=np.arange(5))
    for load in (resolve, load_recipe):
        with pytest.raises(ConfigError) as info:
            load(tmp_path / "x5.npz")
        assert info.value.field == "recipe" and "x5.npz" in str(info.value)
        assert "recipe .toml text file" in str(info.value)
    # a binary file named .toml: not text, still one ConfigError
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00\x80garbage")
    with pytest.raises(ConfigError, match="recipe .toml text file"):
        resolve(tmp_path / "bin.toml")


def test_fit_with_a_data_file_as_recipe_exits_2_without_traceback(tmp_path):
    import numpy as np
    from typer.testing import CliRunner

    from trainwell.cli import app

    np.savez(tmp_path / "x5.npz", x=np.arange(5))
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "x5.npz"), "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: recipe") and "Traceback" not in result.output
