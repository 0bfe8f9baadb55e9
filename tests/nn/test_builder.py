"""build_model: structure, validation, SELU warnings and the chapter's normalization experiments."""

import math
import warnings

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn import SelfNormalizationWarning, build_model, initialize_linear


def names(module):
    return [n for n, _ in module.named_children()]


def test_default_model_is_named_sequential_of_dense_blocks_ending_in_logits():
    model = build_model(input_shape=(28, 28), n_outputs=10)
    assert names(model) == ["flatten", "hidden1", "hidden2", "output"]
    assert names(model.hidden1) == ["linear", "act"]
    assert model.hidden1.linear.in_features == 784 and model.hidden2.linear.out_features == 100
    assert isinstance(model.output, nn.Linear) and model.output.out_features == 10
    out = model(torch.randn(5, 28, 28))
    assert out.shape == (5, 10)
    # logits, not probabilities: not all rows sum to 1
    assert not torch.allclose(out.sum(1), torch.ones(5))


def test_flat_input_has_no_flatten_and_config_is_stored_as_plain_data():
    model = build_model(input_shape=[20], n_outputs=1, task="binary", hidden=(7,),
                        activation="SiLU")
    assert names(model) == ["hidden1", "output"]
    cfg = model.trainwell_config
    assert cfg["input_shape"] == [20] and cfg["hidden"] == [7] and cfg["activation"] == "swish"
    assert cfg["task"] == "binary" and cfg["init"] == "auto"
    rebuilt = build_model(**cfg)
    assert names(rebuilt) == names(model)


def test_batch_norm_before_drops_the_linear_bias_and_after_keeps_it():
    before = build_model(input_shape=4, n_outputs=2, hidden=[6, 6], batch_norm="before")
    assert names(before.hidden1) == ["linear", "bn", "act"]
    assert before.hidden1.linear.bias is None and before.hidden2.linear.bias is None
    after = build_model(input_shape=4, n_outputs=2, hidden=[6], batch_norm="after")
    assert names(after.hidden1) == ["linear", "act", "bn"]
    assert after.hidden1.linear.bias is not None
    assert before.output.bias is not None


def test_batch_norm_training_output_follows_the_formula():
    torch.manual_seed(0)
    model = build_model(input_shape=3, n_outputs=2, hidden=[5], batch_norm="before",
                        bn_epsilon=1e-3)
    bn = model.hidden1.bn
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0, 3.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, -0.3, 2.0, 1.0]))
    x = torch.randn(16, 5) * 3 + 2
    model.train()
    y = bn(x)
    mu, var = x.mean(0), x.var(0, unbiased=False)
    expected = (x - mu) / torch.sqrt(var + 1e-3) * bn.weight + bn.bias
    assert torch.allclose(y, expected, atol=1e-5)


def test_batch_norm_running_stats_use_keras_momentum_and_eval_uses_them():
    torch.manual_seed(0)
    m, eps = 0.9, 1e-5
    model = build_model(input_shape=3, n_outputs=2, hidden=[4], batch_norm="after",
                        bn_momentum=m, bn_epsilon=eps)
    bn = model.hidden1.bn
    model.train()
    mean, var = torch.zeros(4), torch.ones(4)
    for _ in range(3):
        x = torch.randn(32, 4) * 2 + 1
        bn(x)
        # Keras convention: running ← running·m + batch·(1 − m). Running variance uses the
        # unbiased batch variance in torch (Keras uses the biased one; both → σ² for large n).
        mean = mean * m + x.mean(0) * (1 - m)
        var = var * m + x.var(0, unbiased=True) * (1 - m)
    assert torch.allclose(bn.running_mean, mean, atol=1e-6)
    assert torch.allclose(bn.running_var, var, atol=1e-5)
    model.eval()
    x = torch.randn(8, 4)
    expected = (x - mean) / torch.sqrt(var + eps) * bn.weight + bn.bias
    assert torch.allclose(bn(x), expected, atol=1e-5)


def test_dropout_goes_after_the_activation_of_every_hidden_layer_never_after_output():
    model = build_model(input_shape=4, n_outputs=2, hidden=[5, 5, 5], dropout=0.3,
                        input_dropout=0.1)
    assert names(model) == ["input_dropout", "hidden1", "hidden2", "hidden3", "output"]
    for i in (1, 2, 3):
        block = getattr(model, f"hidden{i}")
        assert names(block) == ["linear", "act", "dropout"] and block.dropout.p == 0.3
    assert isinstance(model.input_dropout, nn.Dropout) and model.input_dropout.p == 0.1
    assert not isinstance(list(model.children())[-1], nn.Dropout)


@pytest.mark.parametrize("k,with_dropout", [(1, [3]), (2, [2, 3]), (3, [1, 2, 3]),
                                            (0, [1, 2, 3])])
def test_dropout_top_k_places_dropout_only_in_the_top_k_hidden_layers(k, with_dropout):
    model = build_model(input_shape=4, n_outputs=2, hidden=[5, 5, 5], dropout=0.5,
                        dropout_top_k=k)
    have = [i for i in (1, 2, 3) if hasattr(getattr(model, f"hidden{i}"), "dropout")]
    assert have == with_dropout


def test_dropout_kind_auto_is_alpha_for_selu_and_standard_otherwise():
    selu = build_model(input_shape=4, n_outputs=2, hidden=[5], activation="selu", dropout=0.1,
                       input_dropout=0.1)
    assert type(selu.hidden1.dropout) is nn.AlphaDropout
    assert type(selu.input_dropout) is nn.AlphaDropout
    relu = build_model(input_shape=4, n_outputs=2, hidden=[5], dropout=0.1)
    assert type(relu.hidden1.dropout) is nn.Dropout


def test_inverted_dropout_scales_survivors_in_training_and_is_identity_at_eval():
    torch.manual_seed(0)
    p = 0.25
    model = build_model(input_shape=1000, n_outputs=2, hidden=[10], input_dropout=p)
    drop = model.input_dropout
    x = torch.rand(200, 1000) + 0.5
    model.train()
    y = drop(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    assert (~kept).float().mean().item() == pytest.approx(p, abs=0.01)
    assert y.mean().item() == pytest.approx(x.mean().item(), rel=0.01)   # mean preserved
    model.eval()
    assert torch.equal(drop(x), x)


def test_alpha_dropout_keeps_standard_normal_inputs_standard():
    torch.manual_seed(0)
    model = build_model(input_shape=1000, n_outputs=2, hidden=[10], activation="selu",
                        input_dropout=0.2)
    model.train()
    y = model.input_dropout(torch.randn(500, 1000))
    assert abs(y.mean().item()) < 0.01 and y.std().item() == pytest.approx(1.0, abs=0.01)
    assert (y == 0).float().mean() < 0.01            # dropped units go to α', not 0


def _deep_stack(activation, init, depth=50, width=100):
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        initialize_linear(linear, init, "normal", activation)
        layers += [linear, nn.SELU() if activation == "selu" else nn.Sigmoid()]
    return nn.Sequential(*layers)


def test_selu_with_lecun_self_normalizes_through_50_layers_while_sigmoid_with_normal_saturates():
    torch.manual_seed(0)
    x = torch.randn(1000, 100)
    x = (x - x.mean(0)) / x.std(0)                   # standardized input
    with torch.no_grad():
        h = x
        for layer in _deep_stack("selu", "lecun"):
            h = layer(h)
        assert abs(h.mean().item()) < 0.2 and 0.7 < h.std().item() < 1.3
        # Sigmoid with N(0, 1) weights: |z| is ~√100 = 10, so units sit at 0 or 1 where
        # σ'(z) = σ(1 − σ) ≈ 0: the gradients vanish.
        assert h.std(0).mean().item() > 0.7               # still depends on the input
    # Sigmoid with N(0, 1) weights: |z| is ~√100 = 10, so many units sit at 0 or 1 where
    # σ'(z) = σ(1 − σ) ≈ 0; the top layer barely depends on the input and gradients vanish
    # on the way down.
    torch.manual_seed(0)
    sigmoid_net = _deep_stack("sigmoid", "normal")
    h = sigmoid_net(x)
    saturated = (h * (1 - h) < 0.01).float().mean().item()
    assert saturated > 0.3
    assert h.std(0).mean().item() < 0.1               # across samples: the signal collapsed
    h.sum().backward()
    first, last = sigmoid_net[0].weight.grad.norm(), sigmoid_net[-2].weight.grad.norm()
    assert first < 0.1 * last                          # vanishing gradients


def test_selu_network_built_by_default_self_normalizes():
    torch.manual_seed(1)
    model = build_model(input_shape=100, n_outputs=10, hidden=[100] * 20, activation="selu")
    x = torch.randn(512, 100)
    acts = []
    hooks = [getattr(model, f"hidden{i}").register_forward_hook(
        lambda m, i, o: acts.append(o)) for i in range(1, 21)]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    assert abs(acts[-1].mean().item()) < 0.2 and 0.7 < acts[-1].std().item() < 1.3


@pytest.mark.parametrize("kwargs,needle", [
    (dict(batch_norm="before"), "batch norm"),
    (dict(init="he"), "not lecun"),
    (dict(dropout=0.1, dropout_kind="standard"), "standard dropout"),
])
def test_selu_warns_when_self_normalizing_conditions_break(kwargs, needle):
    with pytest.warns(SelfNormalizationWarning, match=needle):
        build_model(input_shape=4, n_outputs=2, hidden=[5], activation="selu", **kwargs)


def test_good_selu_network_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_model(input_shape=4, n_outputs=2, hidden=[5], activation="selu", dropout=0.1)
        build_model(input_shape=4, n_outputs=2, hidden=[5], activation="relu", dropout=0.1)


def test_auto_init_gives_hidden_layers_the_activation_match_and_output_glorot():
    torch.manual_seed(0)
    model = build_model(input_shape=800, n_outputs=400, hidden=[800], activation="relu")
    assert model.hidden1.linear.weight.var().item() == pytest.approx(2 / 800, rel=0.03)
    assert model.output.weight.var().item() == pytest.approx(1 / 600, rel=0.03)
    explicit = build_model(input_shape=800, n_outputs=400, hidden=[800], init="lecun")
    assert explicit.output.weight.var().item() == pytest.approx(1 / 800, rel=0.03)


@pytest.mark.parametrize("kwargs,field", [
    (dict(activation="relu6"), "model.activation"),
    (dict(hidden=[100, 0]), "model.hidden"),
    (dict(hidden=[100, 2.5]), "model.hidden"),
    (dict(hidden="300"), "model.hidden"),
    (dict(batch_norm="middle"), "model.batch_norm"),
    (dict(bn_momentum=1.0), "model.bn_momentum"),
    (dict(bn_momentum=-0.1), "model.bn_momentum"),  # 0 is accepted, as in Keras (test_checks)
    (dict(bn_epsilon=0), "model.bn_epsilon"),
    (dict(init="orthogonal"), "model.init"),
    (dict(init_distribution="cauchy"), "model.init_distribution"),
    (dict(dropout=1.0), "regularization.dropout"),
    (dict(dropout=-0.1), "regularization.dropout"),
    (dict(dropout=float("nan")), "regularization.dropout"),
    (dict(input_dropout=1.5), "regularization.input_dropout"),
    (dict(dropout_kind="gaussian"), "regularization.dropout_kind"),
    (dict(dropout_top_k=-1), "regularization.dropout_top_k"),
    (dict(dropout_top_k=3), "regularization.dropout_top_k"),
    (dict(leaky_slope=-1), "model.leaky_slope"),
    (dict(task="ranking"), "model.task"),
    (dict(n_outputs=0), "model.n_outputs"),
    (dict(input_shape=(28, 0)), "model.input_shape"),
])
def test_bad_values_raise_config_error_naming_the_field(kwargs, field):
    args = dict(input_shape=(28, 28), n_outputs=10, hidden=[300, 100]) | kwargs
    with pytest.raises(ConfigError) as info:
        build_model(**args)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": received ")


def test_empty_hidden_is_a_linear_model():
    model = build_model(input_shape=4, n_outputs=3, hidden=[])
    assert names(model) == ["output"] and model.output.in_features == 4
    assert math.isclose(model.trainwell_config["bn_momentum"], 0.99)


def test_selu_inputs_check_warns_on_unscaled_inputs_only():
    from trainwell.nn import check_self_normalizing_inputs

    torch.manual_seed(0)
    selu = build_model(input_shape=(2, 3), n_outputs=2, hidden=[4], activation="selu")
    assert check_self_normalizing_inputs(selu, torch.randn(2000, 2, 3))
    with pytest.warns(SelfNormalizationWarning, match="not standardized"):
        assert not check_self_normalizing_inputs(selu, torch.rand(2000, 2, 3) * 255)
    relu = build_model(input_shape=6, n_outputs=2, hidden=[4])
    assert check_self_normalizing_inputs(relu, torch.rand(100, 6) * 255)


def test_numpy_integers_are_accepted_as_sizes():
    np = pytest.importorskip("numpy")
    model = build_model(input_shape=(np.int64(3),), n_outputs=np.int64(2), hidden=[np.int32(4)])
    assert model.trainwell_config["hidden"] == [4] and type(model.trainwell_config["hidden"][0]) is int
