"""One rule per value: the recipe and the library accept exactly the same numbers.

Every bounded recipe field takes its bounds from ``trainwell.checks.RANGES`` and the library
function it feeds checks with the same entry; these tests probe both at and around each bound.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainwell import checks
from trainwell.config import SECTIONS, Recipe, accepted_values, apply_overrides
from trainwell.errors import ConfigError
from trainwell.nn import build_model
from trainwell.optim import make_optimizer, make_schedule


def _model(**kw):
    return build_model(input_shape=[3], n_outputs=2, hidden=[4], **kw)


def _optimizer(name):
    return lambda field, v, extra: make_optimizer(nn.Linear(2, 1), name, **{field: v}, **extra)


def _schedule(name):
    return lambda field, v, extra: make_schedule(name, base_lr=0.1, steps_per_epoch=10, epochs=2,
                                                 **{field: v}, **extra)


_M = lambda **kw: (lambda f, v, extra: _model(**{f: v}, **kw))  # noqa: E731

#: recipe field -> (the variant: recipe name overrides, the other values both get; the call)
def _augment(field, v, extra):
    from trainwell.data.augment import Augment
    return Augment(**{field: v}, input_shape=(4, 4))


LIBRARY = {
    "augment.crop_padding": ({}, {}, _augment),
    "augment.noise_std": ({}, {}, _augment),
    "model.bn_momentum": ({}, {}, _M(batch_norm="after")),
    "model.bn_epsilon": ({}, {}, _M(batch_norm="after")),
    "model.leaky_slope": ({}, {}, _M(activation="leaky_relu")),
    "regularization.dropout": ({}, {}, _M()),
    "regularization.input_dropout": ({}, {}, _M()),
    "optimizer.lr": ({"optimizer.name": "sgd"}, {}, _optimizer("sgd")),
    "optimizer.momentum": ({"optimizer.name": "momentum"}, {}, _optimizer("momentum")),
    "optimizer.beta_1": ({"optimizer.name": "adam"}, {}, _optimizer("adam")),
    "optimizer.beta_2": ({"optimizer.name": "adam"}, {}, _optimizer("adam")),
    "optimizer.rho": ({"optimizer.name": "rmsprop"}, {}, _optimizer("rmsprop")),
    "optimizer.epsilon": ({"optimizer.name": "adam"}, {}, _optimizer("adam")),
    "optimizer.weight_decay": ({"optimizer.name": "adamw"}, {}, _optimizer("adamw")),
    "schedule.power": ({"schedule.name": "power"}, {}, _schedule("power")),
    "schedule.factor": ({"schedule.name": "performance"}, {}, _schedule("performance")),
    "schedule.patience": ({"schedule.name": "performance"}, {}, _schedule("performance")),
    "schedule.min_lr": ({"schedule.name": "performance"}, {}, _schedule("performance")),
    "schedule.min_delta": ({"schedule.name": "performance"}, {}, _schedule("performance")),
    "schedule.start_div": ({"schedule.name": "onecycle"}, {}, _schedule("onecycle")),
    "schedule.final_div": ({"schedule.name": "onecycle"}, {}, _schedule("onecycle")),
    "schedule.warmup_frac": ({"schedule.name": "onecycle"}, {"anneal_frac": 0.0},
                             _schedule("onecycle")),
    "schedule.anneal_frac": ({"schedule.name": "onecycle"}, {"warmup_frac": 0.0001},
                             _schedule("onecycle")),
    "schedule.max_momentum": ({"schedule.name": "onecycle"}, {"min_momentum": 0.0},
                              _schedule("onecycle")),
    "schedule.min_momentum": ({"schedule.name": "onecycle"}, {"max_momentum": 0.9995},
                              _schedule("onecycle")),
}


def _probes(r: checks.Range) -> list:
    edges = [x for x in (r.ge, r.gt, r.le, r.lt) if x is not None]
    values = [math.inf, -math.inf, math.nan]
    for e in edges:
        values += [e, e - 1, e + 1] if r.integer else [e, e - 1e-3, e + 1e-3]
    return values


def _toml(v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _accepts(call) -> bool:
    try:
        call()
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("field", sorted(LIBRARY))
def test_the_recipe_and_the_library_accept_the_same_values(field):
    names, extra, library = LIBRARY[field]
    r = checks.RANGES[field]
    section, _, name = field.partition(".")
    base = [f"{k}={v}" for k, v in names.items()] + [f"{section}.{k}={v}" for k, v in extra.items()]
    for v in _probes(r):
        recipe_ok = _accepts(lambda v=v: apply_overrides(Recipe(), [*base, f"{field}={_toml(v)}"]))
        library_ok = _accepts(lambda v=v: library(name, v, extra))
        assert recipe_ok == library_ok == r.contains(v), (field, v, recipe_ok, library_ok)


@pytest.mark.parametrize(("overrides", "field"), [
    (["schedule.warmup_frac=0.6", "schedule.anneal_frac=0.5"], "schedule.warmup_frac"),
    (["schedule.anneal_frac=0.6"], "schedule.warmup_frac"),     # with warmup's default 0.45
    (["schedule.max_momentum=0.5"], "schedule.min_momentum"),   # below min's default 0.85
])
def test_rules_across_fields_use_the_schedules_defaults_like_the_library(overrides, field):
    with pytest.raises(ConfigError, match=field):
        apply_overrides(Recipe(), overrides)
    params = {o.split("=")[0].split(".")[1]: float(o.split("=")[1]) for o in overrides}
    with pytest.raises(ConfigError):
        make_schedule("onecycle", base_lr=0.1, steps_per_epoch=10, epochs=2, **params)


def test_batch_norm_momentum_zero_is_accepted_by_both():
    # the Keras convention: 0 keeps only the last batch's statistics
    assert apply_overrides(Recipe(), ["model.bn_momentum=0"]).model.bn_momentum == 0
    bn = _model(batch_norm="after", bn_momentum=0.0).hidden1.bn
    assert bn.momentum == pytest.approx(1.0)   # torch's convention: 1 − m


@pytest.mark.parametrize("field", sorted(checks.RANGES))
def test_recipe_bounds_and_words_come_from_the_one_table(field):
    section, _, name = field.partition(".")
    if section not in SECTIONS or name not in SECTIONS[section].model_fields:
        pytest.skip("a library-only value")
    info = SECTIONS[section].model_fields[name]
    stated = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt")
              if hasattr(m, k)}
    assert stated == checks.RANGES[field].bounds()
    assert accepted_values(field) == checks.RANGES[field].text


def test_nesterov_without_momentum_is_refused_by_the_recipe_like_the_library():
    with pytest.raises(ConfigError, match="optimizer.momentum"):
        apply_overrides(Recipe(), ["optimizer.name=nesterov", "optimizer.momentum=0"])
    with pytest.raises(ConfigError, match="optimizer.momentum"):
        make_optimizer(nn.Linear(2, 1), "nesterov", momentum=0.0)


def test_defaults_are_written_once():
    from trainwell.optim import HYPERPARAMETERS, SCHEDULES, OneCycleSchedule

    assert Recipe().optimizer.epsilon == HYPERPARAMETERS["epsilon"] == 1e-7
    s = OneCycleSchedule(base_lr=0.1, steps_per_epoch=10, epochs=1)
    params = SCHEDULES.get("onecycle").meta["params"]
    assert (s.start_div, s.final_div, s.warmup_frac, s.anneal_frac, s.max_momentum,
            s.min_momentum) == tuple(params[k] for k in (
                "start_div", "final_div", "warmup_frac", "anneal_frac", "max_momentum",
                "min_momentum"))


def test_integer_ranges_refuse_booleans_and_fractions():
    with pytest.raises(ConfigError, match="an integer ≥ 1"):
        checks.check_field("train.epochs", True)
    with pytest.raises(ConfigError):
        checks.check_field("train.epochs", 2.5)
    assert checks.check_field("train.epochs", 3) == 3
    assert checks.is_number(torch.tensor(1.0).item())


@pytest.mark.parametrize("bad", ["model.bn_momentum=1", "optimizer.epsilon=0",
                                 "regularization.dropout=1", "schedule.anneal_frac=0.6",
                                 "optimizer.momentum=0"])
def test_a_bad_value_is_refused_before_data_is_loaded_or_a_folder_made(tmp_path, bad):
    from typer.testing import CliRunner

    from trainwell.cli import app

    recipe = tmp_path / "r.toml"   # its data file does not exist: loading it would fail first
    recipe.write_text('[data]\ndataset = "npz"\npath = "absent.npz"\n', encoding="utf-8")
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["fit", str(recipe), "--set", bad, "--out", str(out)])
    assert result.exit_code == 2
    assert bad.split("=")[0].replace("anneal_frac", "warmup_frac") in result.output
    assert "absent.npz" not in result.output
    assert not out.exists() or not any(out.iterdir())


TRAINER_FIELDS = ["optimizer.lr", "optimizer.clip_value", "optimizer.clip_norm",
                  "optimizer.clip_global_norm", "regularization.l1", "regularization.l2",
                  "regularization.max_norm"]


@pytest.mark.parametrize("field", TRAINER_FIELDS)
def test_the_trainer_accepts_what_the_recipe_accepts(field):
    from trainwell.train import Trainer

    r = checks.RANGES[field]
    name = field.partition(".")[2]
    for v in _probes(r):
        recipe_ok = _accepts(lambda v=v: apply_overrides(Recipe(), [f"{field}={_toml(v)}"]))
        trainer_ok = _accepts(lambda v=v: Trainer(nn.Linear(2, 2), device="cpu", **{name: v}))
        assert recipe_ok == trainer_ok == r.contains(v), (field, v, recipe_ok, trainer_ok)
