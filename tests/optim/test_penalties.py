"""ℓ1/ℓ2 kernel penalties: hand-computed values, kernels only, Keras semantics."""

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.optim import kernel_parameters, kernel_penalty


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                         nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 2))


def test_kernel_parameters_are_linear_and_conv_weights_only():
    m = model()
    kernels = kernel_parameters(m)
    assert [k is w for k, w in zip(kernels, [m[0].weight, m[3].weight, m[5].weight],
                                   strict=True)] == [True] * 3
    ids = {id(k) for k in kernels}
    assert id(m[1].weight) not in ids and id(m[0].bias) not in ids and id(m[3].bias) not in ids


def test_penalty_equals_hand_computation_over_kernels():
    m = model()
    ws = [m[0].weight, m[3].weight, m[5].weight]
    l1 = sum(w.abs().sum() for w in ws).item()
    l2 = sum((w * w).sum() for w in ws).item()
    got = kernel_penalty(m, l1=0.01, l2=0.001)
    assert got.shape == () and got.item() == pytest.approx(0.01 * l1 + 0.001 * l2, rel=1e-6)
    assert kernel_penalty(m, l1=0.3).item() == pytest.approx(0.3 * l1, rel=1e-6)
    assert kernel_penalty(m, l2=0.3).item() == pytest.approx(0.3 * l2, rel=1e-6)


def test_penalty_ignores_biases_and_batch_norm():
    m = model()
    before = kernel_penalty(m, l1=0.1, l2=0.1).item()
    with torch.no_grad():
        m[0].bias.fill_(100.0)
        m[1].weight.fill_(100.0)
        m[3].bias.fill_(-100.0)
    assert kernel_penalty(m, l1=0.1, l2=0.1).item() == pytest.approx(before)


def test_penalty_gradient_is_l1_sign_plus_two_l2_w():
    lin = nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    kernel_penalty(lin, l1=0.1, l2=0.01).backward()
    w = lin.weight.detach()
    torch.testing.assert_close(lin.weight.grad, 0.1 * w.sign() + 2 * 0.01 * w)
    assert lin.bias.grad is None


def test_penalty_on_explicit_tensors_and_tied_weights_count_once():
    w = torch.tensor([3.0, -4.0])
    assert kernel_penalty([w], l1=1.0, l2=1.0).item() == pytest.approx(7 + 25)
    shared = nn.Linear(2, 2, bias=False)
    tied = nn.Sequential(shared, shared)
    assert len(kernel_parameters(tied)) == 1


def test_zero_factors_give_a_zero_tensor():
    assert kernel_penalty(model()).item() == 0.0
    assert kernel_penalty(nn.ReLU(), l2=1.0).item() == 0.0


@pytest.mark.parametrize("field", ["l1", "l2"])
def test_negative_factor_raises_config_error(field):
    with pytest.raises(ConfigError) as err:
        kernel_penalty(model(), **{field: -0.1})
    assert err.value.field == f"regularization.{field}"
