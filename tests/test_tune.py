"""Hyperparameter search: spaces validated up front, SQLite studies that resume, best recipe."""

from __future__ import annotations

import sys

import pytest
import torch

pytest.importorskip("optuna")

from trainwell.errors import ConfigError, TrainwellError  # noqa: E402
from trainwell.recipe import Recipe, apply_overrides, load_recipe  # noqa: E402
from trainwell.tune import (  # noqa: E402
    PruningCallback,
    builtin_spaces,
    load_space,
    parse_space,
    require_optuna,
    run_study,
    suggest_overrides,
)

FAST = ["model.hidden=[8]", "train.epochs=2", "train.batch_size=64", "train.device=cpu",
        "schedule.name=constant", "train.checkpoint_every_epochs=0",
        "train.early_stopping=false"]


def _splits():
    from trainwell.data.splits import Splits

    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, generator=g)

    def make(n):
        x = torch.randn(n, 6, generator=g)
        return x, (x @ w).argmax(1)

    (xt, yt), (xv, yv), (xs, ys) = make(192), make(64), make(32)
    return Splits(xt, yt, xv, yv, xs, ys, class_names=None, input_shape=(6,), n_outputs=3,
                  task="multiclass", name="synthetic")


SPACE = {
    "optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True},
    "model.activation": ["relu", "elu", "selu"],
    "model.hidden": {"layers": [1, 3], "units": [4, 16]},
    "regularization.dropout": {"low": 0.0, "high": 0.3},
}


def test_a_study_resumes_from_sqlite_respects_the_space_and_writes_the_best_recipe(tmp_path):
    base = apply_overrides(Recipe(name="tiny"), FAST)
    splits = _splits()
    r1 = run_study(base, SPACE, n_trials=2, out=tmp_path, splits=splits, seed=1)
    db = tmp_path / "tune-tiny" / "study.db"
    assert db.is_file() and r1.storage.endswith("study.db")
    assert len(r1.study.trials) == 2

    # a second invocation adds trials to the same stored study
    r2 = run_study(base, SPACE, n_trials=1, out=tmp_path, splits=splits, seed=1)
    assert len(r2.study.trials) == 3
    assert [t.number for t in r2.study.trials] == [0, 1, 2]

    for t in r2.study.trials:
        p = t.params
        assert 1e-3 <= p["optimizer.lr"] <= 0.3
        assert p["model.activation"] in ("relu", "elu", "selu")
        assert 1 <= p["model.hidden.layers"] <= 3 and 4 <= p["model.hidden.units"] <= 16
        assert 0.0 <= p["regularization.dropout"] <= 0.3
        hidden = [o for o in t.user_attrs["overrides"] if o.startswith("model.hidden=")][0]
        assert hidden == "model.hidden=" + str(
            [p["model.hidden.units"]] * p["model.hidden.layers"])
    # the second run did not repeat the first draws (its sampler seed moved on)
    assert r2.study.trials[2].params != r2.study.trials[0].params

    best = load_recipe(r2.best_recipe_path)
    bt = r2.study.best_trial
    assert best.optimizer.lr == pytest.approx(bt.params["optimizer.lr"])
    assert best.model.activation == bt.params["model.activation"]
    assert best.model.hidden == [bt.params["model.hidden.units"]] * bt.params[
        "model.hidden.layers"]
    assert best.train.epochs == 2  # the base recipe's other fields are kept
    assert bt.value == max(t.value for t in r2.study.trials if t.value is not None)
    assert (r2.out_dir / "plots" / "search_history.png").is_file()
    assert (r2.out_dir / "plots" / "param_importances.png").is_file()
    assert r2.rows[0]["trial"] == bt.number


def test_one_trial_skips_importances_and_another_recipe_cannot_resume_it(tmp_path):
    base = apply_overrides(Recipe(name="one"), FAST + ["train.epochs=1"])
    space = {"optimizer.lr": {"low": 0.01, "high": 0.1}}
    r = run_study(base, space, n_trials=1, out=tmp_path, splits=_splits())
    assert r.best_recipe_path is not None
    assert any("at least 2 complete trials" in n for n in r.notes)
    assert not (r.out_dir / "plots" / "param_importances.png").exists()
    other = apply_overrides(base, ["model.activation=elu"])
    with pytest.raises(ConfigError, match="model.activation"):
        run_study(other, space, n_trials=1, out=tmp_path, splits=_splits())
    assert len(r.study.trials) == 1


@pytest.mark.parametrize("space, match", [
    ({"optimizer.learning_rate": {"low": 0.1, "high": 1.0}}, "optimizer.lr"),
    ({"optimizer.lr": {"low": 0.1, "high": 0.01}}, "a number < high"),
    ({"optimizer.lr": {"low": 0.0, "high": 0.1, "log": True}}, "> 0"),
    ({"optimizer.lr": {"low": -1.0, "high": 0.1}}, "optimizer.lr accepts"),
    ({"optimizer.lr": {"low": 0.1, "high": 1.0, "scale": "log"}}, "scale"),
    ({"model.activation": ["relu", "relu6"]}, "relu6"),
    ({"model.activation": []}, "non-empty"),
    ({"model.hidden": {"layers": [3, 1], "units": [10, 20]}}, "layers"),
    ({"model.hidden": {"layers": [1, 3]}}, "units"),
    ({"regularization.dropout": {"low": 0.0, "high": 1.5}}, "dropout"),
])
def test_bad_spaces_are_refused_before_any_trial(space, match):
    with pytest.raises(ConfigError, match=match):
        parse_space(space, Recipe())


def test_derived_depth_and_width_fields():
    import optuna

    specs = parse_space({"model.n_hidden": {"low": 2, "high": 3},
                         "model.n_neurons": [64, 128]}, Recipe())
    trial = optuna.trial.FixedTrial({"model.n_hidden": 3, "model.n_neurons": 128})
    assert suggest_overrides(trial, specs, Recipe()) == ["model.hidden=[128, 128, 128]"]
    per_layer = parse_space({"model.hidden": {"layers": [2, 2], "units": [5, 9],
                                              "same_units": False}}, Recipe())
    trial = optuna.trial.FixedTrial({"model.hidden.layers": 2, "model.hidden.units_1": 9,
                                     "model.hidden.units_2": 5})
    assert suggest_overrides(trial, per_layer, Recipe()) == ["model.hidden=[9, 5]"]


def test_pruning_callback_reports_each_epoch_and_stops_a_pruned_trial():
    class FakeTrial:
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) >= 2

    class FakeTrainer:
        stop_training = False

    trial, t = FakeTrial(), FakeTrainer()
    cb = PruningCallback(trial, "val_accuracy")
    cb.on_epoch_end(t, 1, {"val_accuracy": 0.5, "val_loss": 1.0})
    assert not t.stop_training and trial.reports == [(1, 0.5)]
    cb.on_epoch_end(t, 2, {"val_accuracy": 0.6})
    assert t.stop_training and cb.pruned and trial.reports == [(1, 0.5), (2, 0.6)]


def test_builtin_spaces_are_valid():
    assert "fashion_mlp" in builtin_spaces()
    for name in builtin_spaces():
        assert load_space(name, Recipe())


def test_missing_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(TrainwellError, match=r'pip install "trainwell\[tune\]"'):
        require_optuna()


def test_best_trials_table_headers_stay_readable_on_a_narrow_terminal():
    import io
    from types import SimpleNamespace

    import optuna
    from rich.console import Console

    from trainwell.tune import print_best_trials

    params = {"optimizer.lr": 0.00229, "optimizer.name": "nesterov", "model.hidden.layers": 3,
              "model.hidden.units": 109, "model.activation": "elu", "model.batch_norm": "after",
              "regularization.dropout": 0.37, "train.batch_size": 64}
    trial = SimpleNamespace(state=optuna.trial.TrialState.COMPLETE)
    result = SimpleNamespace(
        study=SimpleNamespace(study_name="default", trials=[trial]), metric="val_accuracy",
        rows=[dict(trial=0, value=0.8028, params=params, epochs=1, seconds=11.1)])
    buf = io.StringIO()
    print_best_trials(result, Console(file=buf, width=140, color_system=None))
    text = buf.getvalue()
    assert "…" not in text
    for word in ("lr", "name", "layers", "units", "activation", "batch_norm", "dropout",
                 "batch_size", "val_accuracy", "nesterov", "0.00229"):
        assert word in text, word


def test_a_space_written_with_toml_tables_reads_like_quoted_dotted_names(tmp_path):
    import tomllib

    text = """
[optimizer.lr]
low = 1e-4
high = 1e-1
log = true

[model]
activation = ["relu", "elu"]
hidden = {layers = [1, 3], units = [16, 64]}
"""
    specs = parse_space(tomllib.loads(text), Recipe())
    assert {s.path for s in specs} == {"optimizer.lr", "model.activation", "model.hidden"}
    lr = next(s for s in specs if s.path == "optimizer.lr")
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)
    with pytest.raises(ConfigError) as err:   # a misspelt field under a table is named in full
        parse_space(tomllib.loads("[optimizer.learning_rate]\nlow = 0.1\nhigh = 1.0\n"),
                    Recipe())
    assert "optimizer.learning_rate" in str(err.value)


def test_an_unknown_metric_is_refused_before_any_trial(tmp_path):
    base = apply_overrides(Recipe(name="m"), FAST + ["train.epochs=1"])
    space = {"optimizer.lr": {"low": 0.01, "high": 0.1}}
    with pytest.raises(ConfigError) as err:
        run_study(base, space, n_trials=1, out=tmp_path, splits=_splits(), metric="val_acc")
    assert err.value.field == "--metric" and "val_accuracy" in str(err.value)
    assert not (tmp_path / "tune-m" / "trials").exists()
    r = run_study(base, space, n_trials=1, out=tmp_path, splits=_splits(), metric="val_loss")
    assert r.study.direction.name == "MINIMIZE" and r.study.best_value > 0


def test_search_plots_leave_matplotlib_style_as_they_found_it(tmp_path):
    optuna = pytest.importorskip("optuna")
    import matplotlib

    from trainwell.studies.tune import plot_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + t.suggest_float("y", 0, 1),
                   n_trials=4)
    before = dict(matplotlib.rcParams)
    paths, _ = plot_study(study, tmp_path)
    assert len(paths) == 2   # history and importances were drawn (in Optuna's ggplot style)
    after = dict(matplotlib.rcParams)
    changed = [k for k in before if before[k] != after[k]]
    assert [k for k in changed if not k.startswith("backend")] == []   # Agg may be chosen
