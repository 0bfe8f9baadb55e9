"""Max-norm: every hidden unit's incoming weight vector ends with ‖w‖₂ ≤ r."""

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.nn import apply_max_norm, build_model


def test_max_norm_clips_rows_above_r_and_keeps_rows_below_unchanged():
    torch.manual_seed(0)
    model = build_model(input_shape=20, n_outputs=3, hidden=[30, 10])
    with torch.no_grad():
        model.hidden1.linear.weight.mul_(torch.linspace(0.01, 5, 30)[:, None])
    before = model.hidden1.linear.weight.clone()
    output_before = model.output.weight.clone()
    r = 0.8
    apply_max_norm(model, r)
    after = model.hidden1.linear.weight
    norms_before = before.norm(dim=1)
    norms_after = after.norm(dim=1)
    assert (norms_after <= r * (1 + 1e-6)).all()
    big = norms_before > r
    assert big.any() and (~big).any()
    # Oracle: w ← w · r/‖w‖ for rows outside the ball, unchanged inside.
    expected = torch.where(big[:, None], before * (r / norms_before)[:, None], before)
    assert torch.allclose(after, expected, atol=1e-7)
    assert (model.hidden2.linear.weight.norm(dim=1) <= r * (1 + 1e-6)).all()
    assert torch.equal(model.output.weight, output_before)      # output layer left alone


def test_max_norm_on_any_module_and_include_output():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    apply_max_norm(model, 1.0)
    assert torch.allclose(model[0].weight.norm(dim=1), torch.ones(4))
    assert model[2].weight.norm(dim=1).min() > 1.0               # last Linear is the output
    apply_max_norm(model, 1.0, include_output=True)
    assert torch.allclose(model[2].weight.norm(dim=1), torch.ones(2))
    assert torch.equal(model[0].bias, torch.full((4,), 3.0))     # biases untouched


def test_max_norm_zero_is_off_and_bad_values_are_config_errors():
    model = build_model(input_shape=3, n_outputs=2, hidden=[4])
    w = model.hidden1.linear.weight.clone()
    apply_max_norm(model, 0)
    assert torch.equal(model.hidden1.linear.weight, w)
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(ConfigError, match="regularization.max_norm"):
            apply_max_norm(model, bad)


def test_max_norm_does_not_touch_autograd():
    model = build_model(input_shape=3, n_outputs=2, hidden=[4])
    model(torch.randn(2, 3)).sum().backward()
    apply_max_norm(model, 0.01)
    assert model.hidden1.linear.weight.grad_fn is None and model.hidden1.linear.weight.is_leaf
