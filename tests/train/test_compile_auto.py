"""train.compile = "auto": compile only runs long enough to pay off; the disk cache; the summary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.config import recipe_from_dict
from trainwell.errors import ConfigError
from trainwell.train import Trainer
from trainwell.train.compile_cache import (
    AUTO_COMPILE_MIN_STEPS,
    compile_cache_dir,
    enable_compile_cache,
    resolve_compile,
)


def test_auto_compiles_only_long_runs_and_true_false_keep_their_meaning():
    assert resolve_compile("auto", AUTO_COMPILE_MIN_STEPS) is True
    assert resolve_compile("auto", AUTO_COMPILE_MIN_STEPS - 1) is False
    assert resolve_compile(True, 1) is True and resolve_compile(False, 10**9) is False


def test_recipe_default_is_auto_and_other_words_are_refused():
    assert recipe_from_dict({}).train.compile == "auto"
    assert recipe_from_dict({"train": {"compile": True}}).train.compile is True
    assert recipe_from_dict({"train": {"compile": False}}).train.compile is False
    with pytest.raises(ConfigError):
        recipe_from_dict({"train": {"compile": "sometimes"}})
    with pytest.raises(ConfigError, match="train.compile"):
        Trainer(nn.Linear(4, 3), compile="sometimes")


def test_a_tiny_auto_run_stays_eager_and_says_so():
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    t = Trainer(nn.Linear(4, 3), device="cpu", compile="auto")
    t.fit(x, y, epochs=2, batch_size=16)
    info = t.train_step.compile_info()
    assert t.compile is False and t.train_step._graph is None
    assert info["ran"] is False and info["eager_steps"] == 8 and info["cache_hit"] is None


def test_auto_compiles_a_run_past_the_threshold(monkeypatch):
    """The decision (not the compiling): a run of ≥ the threshold builds a compiled step."""
    monkeypatch.setattr("trainwell.train.compile_cache.AUTO_COMPILE_MIN_STEPS", 8)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # no real compiler: cheap
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    t = Trainer(nn.Linear(4, 3), device="cpu", compile="auto")
    t.fit(x, y, epochs=2, batch_size=16)
    assert t.compile is True and t.train_step.compiled_steps == 7  # step 1 primes the state
    assert t.train_step.compile_info()["ran"] is True


def test_compile_cache_lives_in_the_trainwell_cache(monkeypatch, tmp_path):
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(functorch_config, "enable_autograd_cache", False)
    path = enable_compile_cache()
    assert path == compile_cache_dir() == tmp_path / "compile" and path.is_dir()
    assert inductor_config.fx_graph_cache and functorch_config.enable_autograd_cache
    import os
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(path)


def test_an_unwritable_cache_folder_only_turns_the_disk_cache_off(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TRAINWELL_CACHE", str(blocker))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert enable_compile_cache() is None


def test_compile_cache_never_goes_into_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TRAINWELL_CACHE", raising=False)
    monkeypatch.setenv("TRAINWELL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert compile_cache_dir() == tmp_path / "cache" / "trainwell" / "compile"


def test_auto_compiles_sooner_once_the_step_is_in_the_disk_cache(monkeypatch, tmp_path):
    """A run too short to pay for a cold compile compiles once the same step (network,
    optimizer, batch size) was compiled before: a second run finds its kernels cached."""
    monkeypatch.setenv("TRAINWELL_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr("trainwell.train.compile_cache.AUTO_COMPILE_MIN_STEPS", 1000)
    monkeypatch.setattr("trainwell.train.compile_cache.AUTO_COMPILE_MIN_STEPS_CACHED", 8)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # no real compiler: cheap
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))

    def run(compile_, batch_size=16, hidden=False):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)) if hidden else \
            nn.Linear(4, 3)
        t = Trainer(model, device="cpu", compile=compile_)
        t.fit(x, y, epochs=2, batch_size=batch_size)
        return t

    assert run("auto").compile is False  # 8 steps, nothing cached: stays eager
    assert run(True).train_step.compiled_steps == 7  # a compiled run notes its step
    assert run("auto").compile is True  # the same step, now cached: compiles
    assert run("auto", batch_size=8).compile is False  # another batch size: another graph
    assert run("auto", hidden=True).compile is False  # another network
