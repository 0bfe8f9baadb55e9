"""Gradient clipping against the chapter's worked examples and hand-computed norms."""

import math

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.optim import clip_gradients


def with_grad(*values):
    p = nn.Parameter(torch.zeros(len(values)))
    p.grad = torch.tensor(values)
    return p


def test_clip_value_seed_example_changes_direction():
    p = with_grad(0.9, 100.0)
    assert clip_gradients([p], clip_value=1.0) is None
    torch.testing.assert_close(p.grad, torch.tensor([0.9, 1.0]))
    q = with_grad(-3.0, 0.5)
    clip_gradients([q], clip_value=1.0)
    torch.testing.assert_close(q.grad, torch.tensor([-1.0, 0.5]))


def test_clip_norm_seed_example_keeps_direction():
    p = with_grad(0.9, 100.0)
    clip_gradients([p], clip_norm=1.0)
    torch.testing.assert_close(p.grad, torch.tensor([0.00899964, 0.9999595]),
                               rtol=1e-6, atol=1e-7)
    assert math.isclose(p.grad.norm().item(), 1.0, rel_tol=1e-6)


def test_clip_norm_is_per_tensor_like_keras_clipnorm():
    big, small = with_grad(3.0, 4.0), with_grad(0.3, 0.4)   # norms 5 and 0.5
    clip_gradients([big, small], clip_norm=1.0)
    torch.testing.assert_close(big.grad, torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(small.grad, torch.tensor([0.3, 0.4]))  # already within


def test_clip_global_norm_scales_all_tensors_together():
    a, b = with_grad(3.0, 4.0), with_grad(12.0)                # global norm 13
    norm = clip_gradients([a, b], clip_global_norm=1.0)
    assert isinstance(norm, torch.Tensor) and math.isclose(norm.item(), 13.0, rel_tol=1e-6)
    torch.testing.assert_close(a.grad, torch.tensor([3.0, 4.0]) / 13, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, torch.tensor([12.0]) / 13, rtol=1e-5, atol=1e-6)
    total = torch.cat([a.grad, b.grad]).norm().item()
    assert math.isclose(total, 1.0, rel_tol=1e-5)


def test_clipping_a_module_skips_parameters_without_gradient():
    model = nn.Linear(3, 2)
    model.weight.grad = torch.full((2, 3), 10.0)   # bias.grad stays None
    clip_gradients(model, clip_value=0.5, clip_norm=0.1)
    assert model.bias.grad is None
    assert math.isclose(model.weight.grad.norm().item(), 0.1, rel_tol=1e-5)


def test_zero_means_off():
    p = with_grad(0.9, 100.0)
    assert clip_gradients([p]) is None
    torch.testing.assert_close(p.grad, torch.tensor([0.9, 100.0]))


@pytest.mark.parametrize("field", ["clip_value", "clip_norm", "clip_global_norm"])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), "1"])
def test_negative_threshold_raises_config_error(field, bad):
    with pytest.raises(ConfigError) as err:
        clip_gradients([with_grad(1.0)], **{field: bad})
    assert err.value.field == f"optimizer.{field}"
