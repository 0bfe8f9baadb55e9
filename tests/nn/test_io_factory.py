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
    assert info["factory"] == {"ref": REF, "args": {"width": 16}}
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
