"""Side-by-side comparisons: grid of variants × seeds, table, plots, report, shared init."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from trainwell.compare import (
    builtin_specs,
    grid_variants,
    load_spec,
    mc_dropout_accuracy,
    parse_seeds,
    parse_vary,
    run_comparison,
    split_values,
    table_cells,
)
from trainwell.errors import ConfigError
from trainwell.recipe import Recipe, apply_overrides, builtin_recipes, resolve

FAST = ["model.hidden=[16]", "train.epochs=2", "train.batch_size=32", "train.device=cpu",
        "optimizer.name=sgd", "optimizer.lr=0.05", "schedule.name=constant",
        "train.checkpoint_every_epochs=0", "train.early_stopping=false"]


def _splits():
    from trainwell.data.splits import Splits

    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 3, generator=g)

    def make(n):
        x = torch.randn(n, 8, generator=g)
        return x, (x @ w).argmax(1)

    (xt, yt), (xv, yv), (xs, ys) = make(256), make(96), make(64)
    return Splits(xt, yt, xv, yv, xs, ys, class_names=None, input_shape=(8,), n_outputs=3,
                  task="multiclass", name="synthetic")


def _base():
    return apply_overrides(Recipe(name="tiny"), FAST)


def test_split_values_keeps_lists_and_quoted_commas_whole():
    assert split_values('relu, elu') == ["relu", "elu"]
    assert split_values('[100, 50],[30]') == ["[100, 50]", "[30]"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]


def test_a_2x2_grid_lists_every_variant_and_writes_the_comparison(tmp_path):
    vary = parse_vary(["model.batch_norm=none,after", "model.activation=relu,elu"])
    variants = grid_variants([("tiny", _base())], vary)
    assert [v.name for v in variants] == [
        "batch_norm=none,activation=relu", "batch_norm=none,activation=elu",
        "batch_norm=after,activation=relu", "batch_norm=after,activation=elu"]
    assert variants[3].recipe.model.batch_norm == "after"
    assert variants[3].recipe.model.activation == "elu"

    initial: dict[tuple[str, int], torch.Tensor] = {}

    from trainwell.train import Callback

    class RecordInit(Callback):
        def __init__(self, key):
            self.key = key

        def on_fit_start(self, t):
            initial[self.key] = t.model.hidden1.linear.weight.detach().clone()

    c = run_comparison(variants, seeds=[0, 1], out=tmp_path, name="grid", quiet=True,
                       splits=_splits(), callbacks=lambda v, s: [RecordInit((v.name, s))])

    assert [r["variant"] for r in c.rows] == [v.name for v in variants]
    assert len(c.outcomes) == 8 and all(len(o.epochs) == 2 for o in c.outcomes)
    for r in c.rows:
        mine = [o.best for o in c.outcomes if o.variant == r["variant"]]
        assert r["best_mean"] == pytest.approx(statistics.fmean(mine))
        assert r["best_std"] == pytest.approx(statistics.stdev(mine))
        assert r["metric"] == "val_accuracy"
        assert all(1 <= e <= 2 for e in r["best_epochs"])
        assert r["total_time"] > 0 and math.isfinite(r["time_per_epoch"])
        cell = table_cells(r)["best val acc"]
        assert "%" in cell and "±" in cell
    # best is the maximum of the history's val_accuracy
    o = c.outcomes[0]
    assert o.best == max(e["val_accuracy"] for e in o.epochs)

    # same seed: relu and elu (both He init) start from the same weights, with or without BN;
    # a different seed starts elsewhere
    names = [v.name for v in variants]
    for s in (0, 1):
        for n in names[1:]:
            assert torch.equal(initial[(names[0], s)], initial[(n, s)]), (n, s)
    assert not torch.equal(initial[(names[0], 0)], initial[(names[0], 1)])

    # every run keeps its normal run directory inside the comparison directory
    runs = sorted((c.dir / "runs").iterdir())
    assert len(runs) == 8 and all((r / "summary.json").is_file() for r in runs)
    data = json.loads((c.dir / "comparison.json").read_text())
    assert [r["variant"] for r in data["rows"]] == names and data["seeds"] == [0, 1]
    csv_text = (c.dir / "comparison.csv").read_text()
    assert all(n in csv_text for n in names)
    page = (c.dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert all(n in page for n in names)
    assert (c.dir / "plots" / "learning_curves.png").stat().st_size > 5000


def test_bad_vary_fields_and_values_fail_before_training(tmp_path):
    base = _base()
    with pytest.raises(ConfigError, match="activaton"):
        grid_variants([("b", base)], parse_vary(["model.activaton=relu,elu"]))
    with pytest.raises(ConfigError) as err:
        grid_variants([("b", base)], parse_vary(["model.batch_norm=none,sideways"]))
    assert err.value.field == "model.batch_norm" and "sideways" in str(err.value)
    with pytest.raises(ConfigError, match="--vary"):
        parse_vary(["model.activation"])
    with pytest.raises(ConfigError, match="--vary"):
        parse_vary(["model.activation=relu,"])
    with pytest.raises(ConfigError, match="each field once"):
        parse_vary(["model.activation=relu", "model.activation=elu"])
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("0,x")
    assert not list(tmp_path.iterdir())


def test_several_recipe_files_are_variants(tmp_path):
    a = apply_overrides(_base(), ["name=plain"])
    b = apply_overrides(_base(), ["name=wide", "model.hidden=[32]"])
    variants = grid_variants([("plain", a), ("wide", b)], parse_vary(["optimizer.lr=0.01,0.1"]))
    assert [v.name for v in variants] == ["plain,lr=0.01", "plain,lr=0.1", "wide,lr=0.01",
                                          "wide,lr=0.1"]
    assert variants[3].recipe.model.hidden == [32] and variants[3].recipe.optimizer.lr == 0.1


def test_mc_dropout_accuracy_averages_softmax_over_passes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 3))
    model.eval()
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    torch.manual_seed(3)
    acc = mc_dropout_accuracy(model, x, y, samples=7, batch_size=20)
    # oracle: the same passes drawn by hand, batch by batch
    torch.manual_seed(3)
    model.train()
    with torch.no_grad():
        preds = []
        for i in range(0, 50, 20):
            p = torch.stack([torch.softmax(model(x[i:i + 20]), -1) for _ in range(7)]).mean(0)
            preds.append(p.argmax(-1))
    assert acc == pytest.approx((torch.cat(preds) == y).float().mean().item())
    model.eval()
    assert not model[1].training  # mode restored
    plain = (model(x).argmax(-1) == y).float().mean().item()
    assert mc_dropout_accuracy(model, x, y, samples=0) == pytest.approx(plain)


def test_mc_dropout_column_compares_with_the_same_weights_without_mc(tmp_path):
    from trainwell.compare import Variant

    recipe = apply_overrides(_base(), ["regularization.dropout=0.3"])
    c = run_comparison([Variant("dropout", recipe, mc_samples=4)], out=tmp_path, quiet=True,
                       splits=_splits())
    (o,) = c.outcomes
    assert 0 <= o.mc_accuracy <= 1 and 0 <= o.kept_accuracy <= 1
    cell = table_cells(c.rows[0])["MC dropout val acc"]
    assert cell.startswith(f"{100 * o.mc_accuracy:.2f}%")
    assert f"vs {100 * o.kept_accuracy:.2f}% without MC" in cell


def test_builtin_comparison_recipes_and_specs_load():
    names = [n for n in builtin_recipes() if n.startswith("compare_")]
    assert any(n.startswith("compare_cifar10_") for n in names)
    assert any(n.startswith("compare_fashion_") for n in names)
    for n in names:
        resolve(n)
    assert {"fashion_exercise", "cifar10_exercise"} <= set(builtin_specs())
    spec = load_spec("compare_fashion_exercise")
    got = {v.name: v.recipe for v in spec.variants}
    assert got["bn"].model.batch_norm != "none"
    selu = got["selu"]
    assert selu.model.activation == "selu" and selu.data.standardize
    assert selu.model.init in ("auto", "lecun") and selu.model.batch_norm == "none"
    assert got["alpha_dropout"].regularization.dropout > 0
    assert any(v.mc_samples > 0 for v in spec.variants)
    assert got["1cycle"].schedule.name == "onecycle"
    cifar = load_spec("cifar10_exercise")
    base = cifar.variants[0].recipe
    assert base.model.hidden == [100] * 20 and base.model.activation == "swish"
    assert base.optimizer.name == "nadam" and base.train.early_stopping
    assert base.data.dataset == "cifar10"


def test_bad_spec_entries_are_named(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[[variants]]\nname = "a"\nrecipe = "default"\nmc = 3\n')
    with pytest.raises(ConfigError, match=r"variants\[0\]\.mc"):
        load_spec(p)
    with pytest.raises(ConfigError, match="fashion_exercise"):
        load_spec("no_such_spec")


def test_one_epoch_comparisons_still_draw_a_visible_point_per_variant(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from trainwell.compare import RunOutcome, plot_comparison

    figures = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda self, *a, **k: (figures.append(self), real_savefig(self, *a, **k)))
    row = dict(epoch=1, loss=0.9, accuracy=0.7, val_loss=0.6, val_accuracy=0.8, time=0.4)
    outcomes = [RunOutcome(variant=v, seed=0, run_dir="", status="completed", epochs=[row],
                           metric="val_accuracy", best=0.8, best_epoch=1, time_per_epoch=0.4,
                           total_time=1.0) for v in ("a", "b")]
    plot_comparison(outcomes, tmp_path)
    curves = figures[0]
    for ax in curves.axes:
        assert ax.lines and all(line.get_marker() not in (None, "", "None") for line in ax.lines)
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_total_time_is_the_training_time_so_the_first_variant_pays_no_warm_up(tmp_path):
    variants = grid_variants([("tiny", _base())], parse_vary(["model.activation=relu,elu"]))
    c = run_comparison(variants, seeds=[0], out=tmp_path, name="t", splits=_splits(),
                       quiet=True)
    for o in c.outcomes:
        assert o.total_time == pytest.approx(sum(e["time"] for e in o.epochs))
    page = (c.dir / "report.html").read_text()
    assert "total time is" in page


def test_short_times_keep_a_decimal_so_they_do_not_read_as_zero():
    row = dict(variant="v", metric="val_accuracy", best_mean=0.5, best_std=math.nan,
               best_epochs=[1], epochs_run=[1], time_per_epoch=0.12, total_time=0.37,
               statuses=["completed"])
    assert table_cells(row)["total time"] == "0.37 s"
    assert table_cells(dict(row, total_time=123.4))["total time"] == "123 s"
    assert table_cells(dict(row, time_per_epoch=0.04))["time/epoch"] == "0.04 s"
