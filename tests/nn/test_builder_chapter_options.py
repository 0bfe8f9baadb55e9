"""Builder options the chapter's notebook uses: input batch norm, the output layer's own
initializer, the compact form of a deep network, Keras' batch-norm ε."""

import math

import pytest
import torch

from trainwell.errors import ConfigError
from trainwell.nn import build_model, load_model, save_model
from trainwell.nn.builder import expand_hidden


def test_input_batch_norm_normalizes_the_flattened_inputs_with_batch_statistics():
    torch.manual_seed(0)
    model = build_model(input_shape=(2, 3), n_outputs=4, hidden=[5], input_batch_norm=True,
                        bn_momentum=0.9, bn_epsilon=1e-3)
    names = [n for n, _ in model.named_children()]
    assert names == ["flatten", "input_bn", "hidden1", "output"]
    x = torch.randn(64, 2, 3) * 4 + 2
    flat = x.reshape(64, -1)
    model.train()
    out = model.input_bn(model.flatten(x))
    # The formula: (x − μ_B) / √(σ²_B + ε) with the biased batch variance, γ = 1, β = 0.
    mu, var = flat.mean(0), flat.var(0, unbiased=False)
    assert torch.allclose(out, (flat - mu) / torch.sqrt(var + 1e-3), atol=1e-5)
    # Keras momentum 0.9: running ← running·0.9 + batch·0.1 (torch keeps the unbiased variance).
    assert torch.allclose(model.input_bn.running_mean, 0.1 * mu, atol=1e-6)
    assert torch.allclose(model.input_bn.running_var, 0.9 + 0.1 * flat.var(0), atol=1e-5)
    assert model.input_bn.eps == 1e-3


def test_input_batch_norm_round_trips_through_save_and_load(tmp_path):
    model = build_model(input_shape=6, n_outputs=2, hidden=[4], input_batch_norm=True)
    model.train()
    model(torch.randn(32, 6) + 3)
    model.eval()
    save_model(model, tmp_path)
    x = torch.randn(8, 6)
    assert torch.allclose(load_model(tmp_path)(x), model(x))


@pytest.mark.parametrize("output_init,variance", [
    ("glorot", 1 / ((1000 + 500) / 2)), ("he", 2 / 1000), ("lecun", 1 / 1000)])
def test_output_init_sets_the_output_layers_variance_only(output_init, variance):
    torch.manual_seed(0)
    model = build_model(input_shape=1000, n_outputs=500, hidden=[1000], init="he",
                        output_init=output_init)
    assert model.output.weight.var().item() == pytest.approx(variance, rel=0.03)
    assert model.hidden1.linear.weight.var().item() == pytest.approx(2 / 1000, rel=0.03)


def test_output_init_same_keeps_the_explicit_init_and_glorot_for_auto():
    torch.manual_seed(0)
    he = build_model(input_shape=1000, n_outputs=500, hidden=[1000], init="he")
    assert he.output.weight.var().item() == pytest.approx(2 / 1000, rel=0.03)
    auto = build_model(input_shape=1000, n_outputs=500, hidden=[1000], activation="relu")
    assert auto.output.weight.var().item() == pytest.approx(1 / 750, rel=0.03)
    with pytest.raises(ConfigError, match="model.output_init"):
        build_model(input_shape=3, n_outputs=2, output_init="zeros")


def test_truncated_normal_reaches_every_layer():
    torch.manual_seed(0)
    model = build_model(input_shape=400, n_outputs=10, hidden=[400, 400], activation="selu",
                        init_distribution="truncated_normal")
    cut = 2 * math.sqrt(1 / 400) / 0.87962566103423978
    for i in (1, 2):
        w = getattr(model, f"hidden{i}").linear.weight
        assert w.abs().max().item() <= cut
        assert w.var().item() == pytest.approx(1 / 400, rel=0.03)


def test_compact_hidden_builds_layers_times_units():
    assert expand_hidden({"layers": 3, "units": 7}) == [7, 7, 7]
    assert expand_hidden(5) == [5]
    model = build_model(input_shape=4, n_outputs=2, hidden={"layers": 4, "units": 6})
    assert model.trainwell_config["hidden"] == [6, 6, 6, 6]
    assert [n for n, _ in model.named_children()][-2] == "hidden4"
    for bad in ({"layers": 0, "units": 3}, {"layers": 2}, {"layers": 2, "units": 3, "x": 1},
                [3, 0], "100"):
        with pytest.raises(ConfigError, match="model.hidden.*layers = N"):
            expand_hidden(bad)
