"""save_model / load_model / load_weights / clone_model."""

import json

import pytest
import torch
from torch import nn

from trainwell.errors import CheckpointError
from trainwell.nn import build_model, clone_model, load_model, load_weights, save_model
from trainwell.nn.io import load_model_info


def _trained_like_model():
    torch.manual_seed(0)
    model = build_model(input_shape=(4, 4), n_outputs=3, hidden=[8, 6], activation="prelu",
                        batch_norm="before", dropout=0.3)
    model.train()
    model(torch.randn(32, 4, 4))                  # non-default BN running statistics
    return model.eval()


def test_save_then_load_gives_identical_outputs_and_keeps_extra(tmp_path):
    model = _trained_like_model()
    extra = {"task": "multiclass", "class_names": ["a", "b", "c"],
             "mean": torch.tensor([0.5, 1.5])}
    save_model(model, tmp_path / "m", extra=extra)
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.safetensors", "model.json"}
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["trainwell_config"]["activation"] == "prelu"
    assert info["extra"]["mean"] == [0.5, 1.5] and "trainwell_version" in info
    loaded = load_model(tmp_path / "m")
    x = torch.randn(10, 4, 4)
    assert torch.equal(loaded(x), model(x))
    assert loaded.trainwell_extra["class_names"] == ["a", "b", "c"]
    assert torch.equal(loaded.hidden1.bn.running_var, model.hidden1.bn.running_var)
    assert load_model_info(tmp_path / "m")["extra"]["task"] == "multiclass"


def test_load_weights_into_any_module_and_mismatch_is_a_checkpoint_error(tmp_path):
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    save_model(net, tmp_path)
    assert load_model_info(tmp_path)["trainwell_config"] is None
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    load_weights(other, tmp_path)
    x = torch.randn(4, 3)
    assert torch.equal(other(x), net(x))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights(nn.Sequential(nn.Linear(3, 6)), tmp_path)
    with pytest.raises(CheckpointError, match="load_weights"):
        load_model(tmp_path)                      # not a builder model


def test_missing_or_corrupt_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="model.json is missing"):
        load_model(tmp_path)
    save_model(build_model(input_shape=2, n_outputs=2, hidden=[3]), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(CheckpointError, match="JSON"):
        load_model(tmp_path)


def test_save_leaves_no_temporary_files_and_overwrites_cleanly(tmp_path):
    model = _trained_like_model()
    save_model(model, tmp_path)
    save_model(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_clone_is_equal_but_independent():
    model = _trained_like_model()
    twin = clone_model(model)
    x = torch.randn(5, 4, 4)
    assert torch.equal(twin(x), model(x))
    assert twin.trainwell_config == model.trainwell_config
    with torch.no_grad():
        twin.output.weight.add_(1.0)
    assert not torch.equal(twin(x), model(x))
    assert twin.output.weight.data_ptr() != model.output.weight.data_ptr()


def test_a_description_this_version_cannot_rebuild_is_a_checkpoint_error(tmp_path):
    save_model(build_model(input_shape=2, n_outputs=2, hidden=[3]), tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    info["trainwell_config"]["future_option"] = 1
    (tmp_path / "model.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="cannot be rebuilt"):
        load_model(tmp_path)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_saves_loads_clones_and_summarizes(tmp_path):
    from trainwell.nn import apply_max_norm, model_summary

    model = _trained_like_model().cuda()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path, device="cuda")
    x = torch.randn(6, 4, 4, device="cuda")
    assert loaded.output.weight.is_cuda and torch.allclose(loaded(x), model(x))
    assert torch.allclose(clone_model(model)(x), model(x))
    assert model_summary(model, (4, 4)).total_params > 0
    apply_max_norm(model, 0.5)
    assert (model.hidden1.linear.weight.norm(dim=1) <= 0.5 + 1e-5).all()


def test_loading_a_saved_model_does_not_repeat_the_build_time_advice(tmp_path):
    import warnings

    from trainwell.nn.builder import SelfNormalizationWarning

    with pytest.warns(SelfNormalizationWarning):   # said once, when the user builds it
        model = build_model(input_shape=4, n_outputs=2, hidden=[8], activation="selu",
                            init="glorot")
    save_model(model, tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelfNormalizationWarning)
        loaded = load_model(tmp_path / "m")
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), model.eval()(x))
