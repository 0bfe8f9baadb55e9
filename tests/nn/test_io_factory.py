"""save_model/load_model for a module built by hand with an importable factory."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trainwell.errors import CheckpointError, ConfigError
from trainwell.nn import load_model, save_model


def make_net(width: int = 8, n_outputs: int = 3) -> nn.Module:
    """An importable factory (this test module): a small custom network."""
    return nn.Sequential(nn.Linear(4, width), nn.GELU(), nn.Linear(width, n_outputs))


REF = f"{__name__}:make_net"


def test_a_factory_module_saves_and_loads_back_exactly(tmp_path):
    torch.manual_seed(0)
    model = make_net(width=16)
    save_model(model, tmp_path / "m", extra={"task": "multiclass"}, factory=REF,
               factory_args={"width": 16})
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    # the record a recipe's [model] module writes too (without the shapes: not called with them)
    assert info["trainwell_config"] == {"kind": "module", "module": REF, "args": {"width": 16}}
    again = load_model(tmp_path / "m")
    x = torch.randn(5, 4)
    assert torch.equal(again(x), model.eval()(x))
    assert again.trainwell_extra == {"task": "multiclass"} and not again.training


def test_a_factory_that_builds_something_else_is_refused_before_saving(tmp_path):
    model = make_net(width=16)
    with pytest.raises(ConfigError, match="factory"):
        save_model(model, tmp_path / "m", factory=REF, factory_args={"width": 8})
    with pytest.raises(ConfigError, match="factory"):
        save_model(model, tmp_path / "m", factory="no_such_package.mod:make")
    assert not (tmp_path / "m").exists()
    save_model(model, tmp_path / "plain")  # no factory: load_model says how to do it
    with pytest.raises(CheckpointError, match="factory="):
        load_model(tmp_path / "plain")


def test_a_model_json_of_an_earlier_version_still_loads(tmp_path):
    torch.manual_seed(1)
    model = make_net(width=8)
    save_model(model, tmp_path / "m", factory=REF, factory_args={"width": 8})
    path = tmp_path / "m" / "model.json"
    info = json.loads(path.read_text())
    info["factory"] = {"ref": REF, "args": info["trainwell_config"]["args"]}
    info["trainwell_config"] = None                 # how model.json recorded it before
    path.write_text(json.dumps(info))
    x = torch.randn(3, 4)
    assert torch.equal(load_model(tmp_path / "m")(x), model.eval()(x))


def test_a_loaded_module_saves_again_without_naming_its_factory(tmp_path):
    torch.manual_seed(2)
    model = make_net(width=8, n_outputs=2)
    save_model(model, tmp_path / "a", factory=REF, factory_args={"width": 8, "n_outputs": 2})
    again = load_model(tmp_path / "a")
    assert again.trainwell_config["module"] == REF
    save_model(again, tmp_path / "b")               # the record travels with the module
    x = torch.randn(3, 4)
    assert torch.equal(load_model(tmp_path / "b")(x), model.eval()(x))


def test_both_spellings_are_one_record_and_a_file_factory_works_from_python(tmp_path,
                                                                          monkeypatch):
    from trainwell.nn import build_from_factory

    (tmp_path / "nets.py").write_text(
        "from torch import nn\n"
        "def net(input_shape=(4,), n_outputs=3, width=8):\n"
        "    return nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU(),\n"
        "                         nn.Linear(width, n_outputs))\n")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(3)
    spec = f"{tmp_path / 'nets.py'}:net"   # a recipe's relative file, as the run makes it
    recipe = build_from_factory(spec, input_shape=(4,), n_outputs=3, args={"width": 8})
    hand = build_from_factory("nets.py:net", args={"width": 8})
    hand.load_state_dict(recipe.state_dict())
    save_model(recipe, tmp_path / "recipe")
    save_model(hand, tmp_path / "python", factory="nets.py:net", factory_args={"width": 8})
    a, b = (json.loads((tmp_path / d / "model.json").read_text())["trainwell_config"]
            for d in ("recipe", "python"))
    assert a["kind"] == b["kind"] == "module" and a["args"] == b["args"] == {"width": 8}
    assert b["module"] == spec   # made absolute by save_model: it loads from anywhere
    monkeypatch.chdir(tmp_path.parent)
    x = torch.randn(5, 4)
    ref = recipe.eval()(x)
    for d in ("recipe", "python"):
        assert torch.equal(load_model(tmp_path / d)(x), ref)


def test_a_loaded_python_factory_module_can_be_reused_for_transfer(tmp_path):
    from trainwell.nn.reuse import reuse_layers

    torch.manual_seed(4)
    save_model(make_net(width=8), tmp_path / "m", factory=REF, factory_args={"width": 8})
    new = reuse_layers(load_model(tmp_path / "m"), n_outputs=2, reuse=1)
    assert new(torch.randn(3, 4)).shape == (3, 2)
