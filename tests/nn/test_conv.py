"""Convolutional networks: Table 11-1 init with the conv fan-in, BN-in-conv with the Keras
momentum, BN folding into Conv2d, max-norm per filter, penalties on conv kernels."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn import (
    SelfNormalizationWarning,
    apply_max_norm,
    build_cnn,
    fold_batch_norm,
    load_model,
    save_model,
)
from trainwell.nn.conv import conv_block, parse_conv
from trainwell.optim import kernel_parameters, kernel_penalty


@pytest.mark.parametrize("init, variance", [
    ("he", lambda fi, fo: 2 / fi), ("lecun", lambda fi, fo: 1 / fi),
    ("glorot", lambda fi, fo: 2 / (fi + fo))])
@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_conv_init_variance_uses_the_conv_fan_in(init, variance, distribution):
    torch.manual_seed(0)
    block = conv_block(48, 96, 3, init=init, init_distribution=distribution)
    w = block.conv.weight
    fan_in, fan_out = 48 * 3 * 3, 96 * 3 * 3     # channels × kernel area
    assert w.var().item() == pytest.approx(variance(fan_in, fan_out), rel=0.05)
    assert torch.count_nonzero(block.conv.bias) == 0
    if distribution == "uniform":   # U(−r, r) with r = √(3σ²)
        assert w.abs().max().item() <= (3 * variance(fan_in, fan_out)) ** 0.5 + 1e-7


def test_bn_in_conv_updates_running_statistics_with_the_keras_momentum():
    m = 0.9
    block = conv_block(2, 3, 1, batch_norm="before", bn_momentum=m)
    assert isinstance(block.bn, nn.BatchNorm2d) and block.conv.bias is None
    x = torch.randn(8, 2, 5, 5)
    block.train()
    with torch.no_grad():
        z = block.conv(x)
        block(x)
    batch_mean = z.mean(dim=(0, 2, 3))
    batch_var = z.var(dim=(0, 2, 3), unbiased=True)   # torch's running var is unbiased
    # running ← running·m + batch·(1 − m), from running mean 0 and variance 1
    assert torch.allclose(block.bn.running_mean, batch_mean * (1 - m), atol=1e-6)
    assert torch.allclose(block.bn.running_var, m + batch_var * (1 - m), atol=1e-5)


def _trained_bn_cnn(batch_norm: str) -> nn.Module:
    torch.manual_seed(1)
    model = build_cnn(input_shape=(3, 12, 12), n_outputs=4, conv=[[6, 3], "pool", [8, 3, 2]],
                      hidden=[10], batch_norm=batch_norm)
    model.train()
    with torch.no_grad():
        for _ in range(5):   # move the running statistics away from 0 / 1
            model(torch.randn(16, 3, 12, 12) * 3 + 1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
    return model.eval()


def test_bn_folding_into_conv2d_is_exact_and_reloads(tmp_path):
    model = _trained_bn_cnn("before")
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = torch.randn(7, 3, 12, 12) * 3 + 1
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5, rtol=1e-5)
    # the folded conv is W·s per filter, b = β − μ·s (no conv bias before folding)
    bn = model.conv1.bn
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    assert torch.allclose(folded.conv1.conv.weight, model.conv1.conv.weight * s[:, None, None, None])
    assert torch.allclose(folded.conv1.conv.bias, bn.bias - bn.running_mean * s)
    save_model(folded, tmp_path)
    with torch.no_grad():
        assert torch.allclose(load_model(tmp_path)(x), model(x), atol=1e-5, rtol=1e-5)


def test_bn_after_the_activation_stays_and_stays_exact():
    model = _trained_bn_cnn("after")
    folded = fold_batch_norm(model)
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-6)


def test_max_norm_rescales_each_filter_as_a_whole():
    model = build_cnn(input_shape=(2, 6, 6), n_outputs=3, conv=[[4, 3]], hidden=[5])
    w = model.conv1.conv.weight
    with torch.no_grad():
        w.mul_(torch.tensor([0.01, 5.0, 0.02, 9.0])[:, None, None, None])
    before = w.detach().clone()
    apply_max_norm(model, 1.0)
    norms = before.flatten(1).norm(dim=1)
    expected = before * torch.clamp(1.0 / norms, max=1.0)[:, None, None, None]
    assert torch.allclose(w, expected)
    assert torch.allclose(w[0], before[0]) and torch.allclose(w[2], before[2])
    assert w[1].norm().item() == pytest.approx(1.0, rel=1e-5)


def test_penalties_reach_conv_kernels_but_not_batch_norm_or_biases():
    model = build_cnn(input_shape=(8, 8), n_outputs=2, conv=[[3, 3]], hidden=[], batch_norm="before")
    kernels = kernel_parameters(model)
    assert [tuple(k.shape) for k in kernels] == [(3, 1, 3, 3), (2, 192)]
    expected = 0.01 * sum(k.abs().sum() for k in kernels) + 0.1 * sum(k.square().sum() for k in kernels)
    assert torch.allclose(kernel_penalty(model, l1=0.01, l2=0.1), expected)


def test_cnn_layout_shapes_and_dropout_in_the_head():
    model = build_cnn(input_shape=(28, 28), n_outputs=10,
                      conv=[[8, 7], "pool", [16, 3], [16, 3], "pool", "gap"], hidden=[32, 16],
                      dropout=0.5)
    names = [n for n, _ in model.named_children()]
    assert names == ["unsqueeze", "conv1", "pool1", "conv2", "conv3", "pool2", "pool3",
                     "flatten", "hidden1", "hidden2", "output"]
    assert model(torch.randn(3, 28, 28)).shape == (3, 10)
    assert model.hidden1.linear.in_features == 16
    assert isinstance(model.hidden2.dropout, nn.Dropout) and model.hidden2.dropout.p == 0.5
    assert not any(isinstance(m, nn.Dropout) for m in model.conv1.modules())
    assert model.trainwell_config["kind"] == "cnn"


def test_selu_cnn_gets_lecun_alpha_dropout_and_warns_about_batch_norm():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_cnn(input_shape=(8, 8), n_outputs=2, conv=[[4, 3]], hidden=[6],
                          activation="selu", dropout=0.1)
    assert isinstance(model.hidden1.dropout, nn.AlphaDropout)
    with pytest.warns(SelfNormalizationWarning, match="batch norm"):
        build_cnn(input_shape=(8, 8), n_outputs=2, conv=[[4, 3]], hidden=[6],
                  activation="selu", batch_norm="before")


@pytest.mark.parametrize("conv", [[], "pool", [[8]], [[8, 0]], ["maxpool"], ["pool"],
                                  [[4, 3], "gap", [4, 3]]])
def test_bad_conv_lists_name_the_field(conv):
    with pytest.raises(ConfigError, match="model.conv"):
        parse_conv(conv)


def test_too_many_pools_for_the_image_is_one_error():
    with pytest.raises(ConfigError, match="model.conv.*nothing of the image is left"):
        build_cnn(input_shape=(4, 4), n_outputs=2, conv=[[2, 3], "pool", "pool", "pool"])
    with pytest.raises(ConfigError, match="model.kind"):
        build_cnn(input_shape=(16,), n_outputs=2, conv=[[2, 3]])


@pytest.mark.parametrize("reuse, names", [
    (1, ["unsqueeze", "conv1", "pool1", "flatten", "output"]),
    (2, ["unsqueeze", "conv1", "pool1", "conv2", "flatten", "output"]),
    (3, ["unsqueeze", "conv1", "pool1", "conv2", "flatten", "hidden1", "output"])])
def test_transfer_reuses_conv_blocks_under_a_measured_head_and_reloads(reuse, names, tmp_path):
    from trainwell.nn.reuse import reuse_layers

    source = build_cnn(input_shape=(8, 8), n_outputs=5, conv=[[3, 3], "pool", [4, 3]],
                       hidden=[6, 7], batch_norm="before")
    new = reuse_layers(source, n_outputs=2, task="binary", reuse=reuse)
    assert [n for n, _ in new.named_children()] == names
    assert torch.equal(new.conv1.conv.weight, source.conv1.conv.weight)
    x = torch.randn(3, 8, 8)
    new.eval()
    assert new(x).shape == (3, 2)
    save_model(new, tmp_path)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path)(x), new(x))
