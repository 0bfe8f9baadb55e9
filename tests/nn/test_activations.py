"""Every registered activation builds, runs and carries its metadata."""

import pytest
import torch
import torch.nn.functional as F

from trainwell.errors import ConfigError
from trainwell.nn import ACTIVATIONS, build_model, make_activation

EXPECTED = {"sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "prelu", "elu", "selu", "gelu",
            "swish", "mish"}


def test_registry_holds_the_activations_of_the_seeds():
    assert set(ACTIVATIONS.names()) == EXPECTED


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_activation_builds_a_model_that_runs_forward_and_backward(name):
    entry = ACTIVATIONS.get(name)
    assert entry.meta["family"] in {"saturating", "relu", "elu", "smooth"}
    assert entry.meta["init"] in {"glorot", "he", "lecun"}
    torch.manual_seed(0)
    model = build_model(input_shape=5, n_outputs=3, hidden=[8, 8], activation=name)
    out = model(torch.randn(4, 5))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert model.hidden1.linear.weight.grad is not None


def test_saturating_and_dying_flags():
    saturating = {n for n in ACTIVATIONS.names() if ACTIVATIONS.get(n).meta["saturating"]}
    dying = {n for n in ACTIVATIONS.names() if ACTIVATIONS.get(n).meta["can_die"]}
    assert saturating == {"sigmoid", "tanh"}
    assert dying == {"relu"}


def test_leaky_relu_default_slope_is_0_01_and_configurable():
    z = torch.tensor([-2.0, 3.0])
    assert torch.equal(make_activation("leaky_relu")(z), torch.tensor([-0.02, 3.0]))
    assert torch.allclose(make_activation("leaky_relu", alpha=0.2)(z), torch.tensor([-0.4, 3.0]))


def test_builder_passes_leaky_slope_to_leaky_relu_only():
    model = build_model(input_shape=3, n_outputs=2, hidden=[4], activation="leaky_relu",
                        leaky_slope=0.3)
    assert model.hidden1.act.negative_slope == 0.3
    elu = build_model(input_shape=3, n_outputs=2, hidden=[4], activation="elu", leaky_slope=0.3)
    assert elu.hidden1.act.alpha == 1.0


def test_activation_formulas():
    z = torch.linspace(-3, 3, 13)
    assert torch.allclose(make_activation("elu")(z), torch.where(z > 0, z, torch.exp(z) - 1))
    assert torch.allclose(make_activation("swish")(z), z * torch.sigmoid(z))
    assert torch.allclose(make_activation("mish")(z), z * torch.tanh(F.softplus(z)))
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    assert torch.allclose(make_activation("selu")(z),
                          lam * torch.where(z > 0, z, alpha * (torch.exp(z) - 1)))


def test_prelu_learns_one_alpha_per_unit():
    act = make_activation("prelu", features=7)
    assert act.weight.shape == (7,) and act.weight.requires_grad


def test_silu_alias_and_unknown_name():
    assert ACTIVATIONS.get("SiLU").name == "swish"
    with pytest.raises(ConfigError) as info:
        make_activation("relu6")
    assert info.value.field == "model.activation" and "leaky_relu" in str(info.value)
