"""Greedy layer-wise unsupervised pretraining: per-layer autoencoders, stacked encoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError, DataError
from trainwell.nn import build_model
from trainwell.pretrain import greedy_pretrain, stages


def _unlabeled(n: int = 512, seed: int = 0) -> torch.Tensor:
    # Low-rank data: 4 latent factors mixed into 36 pixels, so autoencoders can learn it.
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    mix = torch.randn(4, 36, generator=g)
    return (z @ mix).reshape(n, 6, 6) / 2


def test_greedy_pretraining_reduces_reconstruction_error_of_every_layer():
    torch.manual_seed(0)  # the network's initial weights: independent of the tests run before
    spec = {"input_shape": (6, 6), "n_outputs": 3, "hidden": [16, 8], "activation": "elu"}
    result = greedy_pretrain(spec, _unlabeled(), epochs_per_layer=8, lr=3e-3, device="cpu")
    assert [r.name for r in result.layers] == ["hidden1", "hidden2"]
    for r in result.layers:
        assert r.final_mse < 0.5 * r.initial_mse, r
        assert len(r.epoch_mse) == 8 and r.epoch_mse[-1] < r.epoch_mse[0]
    assert [(r.in_features, r.out_features) for r in result.layers] == [(36, 16), (16, 8)]
    model = result.model
    assert model(torch.randn(5, 6, 6)).shape == (5, 3)
    assert model.trainwell_pretrain["layers"] == ["hidden1", "hidden2"]


def test_pretraining_changes_hidden_layers_in_place_and_leaves_the_head_alone():
    torch.manual_seed(0)
    model = build_model(input_shape=(6, 6), n_outputs=3, hidden=[16, 8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = greedy_pretrain(model, _unlabeled(), epochs_per_layer=2, device="cpu")
    assert result.model is model
    after = model.state_dict()
    assert not torch.equal(before["hidden1.linear.weight"], after["hidden1.linear.weight"])
    assert not torch.equal(before["hidden2.linear.weight"], after["hidden2.linear.weight"])
    assert torch.equal(before["output.weight"], after["output.weight"])


def test_second_layer_is_trained_on_the_codes_of_the_first():
    # Oracle: the codes of layer 1 computed directly; layer 2 reconstructs them better than
    # their own mean does (the error of the best constant reconstruction is their variance).
    torch.manual_seed(0)
    x = _unlabeled(256)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10), nn.Tanh(), nn.Linear(10, 5), nn.Tanh(),
                          nn.Linear(5, 2))
    result = greedy_pretrain(model, x, epochs_per_layer=20, lr=1e-2, device="cpu")
    codes = torch.tanh(model[1](x.reshape(len(x), -1))).detach()
    assert result.layers[1].in_features == codes.shape[1] == 10
    assert result.layers[1].final_mse < 0.5 * float(codes.var(dim=0, unbiased=False).mean())


def test_stages_group_each_layer_with_the_activation_after_it():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    names = [(n, [type(m).__name__ for m in s]) for n, s in stages(model)]
    assert names == [("input", ["Flatten"]), ("1", ["Linear", "ReLU"]), ("3", ["Linear"])]


def test_pretraining_is_reproducible_with_a_seed():
    spec = {"input_shape": (6, 6), "n_outputs": 3, "hidden": [8]}
    torch.manual_seed(1)
    a = greedy_pretrain(build_model(**spec), _unlabeled(128), epochs_per_layer=2, seed=3,
                        device="cpu")
    torch.manual_seed(1)
    b = greedy_pretrain(build_model(**spec), _unlabeled(128), epochs_per_layer=2, seed=3,
                        device="cpu")
    assert a.layers[0].epoch_mse == b.layers[0].epoch_mse
    assert torch.equal(a.model.hidden1.linear.weight, b.model.hidden1.linear.weight)


def test_bad_arguments_are_clear_errors():
    spec = {"input_shape": (6, 6), "n_outputs": 3, "hidden": [8]}
    with pytest.raises(ConfigError, match="pretrain.epochs_per_layer"):
        greedy_pretrain(spec, _unlabeled(8), epochs_per_layer=0)
    with pytest.raises(ConfigError, match="pretrain.lr"):
        greedy_pretrain(spec, _unlabeled(8), lr=-1)
    with pytest.raises(DataError, match="do not fit"):
        greedy_pretrain(spec, torch.randn(8, 5, 5), device="cpu")
    with pytest.raises(DataError, match="NaN"):
        greedy_pretrain(spec, torch.full((8, 6, 6), float("nan")), device="cpu")
    with pytest.raises(ConfigError, match="hidden layer"):
        greedy_pretrain(nn.Sequential(nn.Flatten(), nn.Linear(36, 2)), _unlabeled(8))
