"""The chapter's momentum form against its formula; the lean NAdam against torch's; the
AdamW decay that float32 cannot represent."""

import copy
import warnings

import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.optim import make_optimizer, make_schedule
from trainwell.optim.lean_nadam import LeanNAdam
from trainwell.optim.optimizers import WeightDecayResolutionWarning
from trainwell.optim.velocity import VelocitySGD


def _grad(theta: torch.Tensor) -> torch.Tensor:
    return 2 * theta * torch.tensor([1.0, 3.0, 0.5])     # ∇ of Σ a_i θ_i²


def _rates(n):  # a changing rate: where the two momentum forms part ways
    return [0.1 * 0.7 ** i for i in range(n)]


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_momentum_form_is_the_chapters_formula_under_a_changing_rate(nesterov):
    beta, n = 0.9, 12
    theta0 = torch.tensor([1.0, -2.0, 0.5])
    # The formula: m ← βm − η∇J(θ); θ ← θ + m (Nesterov, Keras: θ ← θ + βm − η∇J(θ)).
    theta, m = theta0.clone().double(), torch.zeros(3, dtype=torch.float64)
    for lr in _rates(n):
        g = _grad(theta)
        m = beta * m - lr * g
        theta = theta + beta * m - lr * g if nesterov else theta + m
    p = nn.Parameter(theta0.clone())
    opt = make_optimizer([p], "nesterov" if nesterov else "momentum", lr=0.1, momentum=beta,
                         momentum_form="keras")
    assert isinstance(opt, VelocitySGD)
    for lr in _rates(n):
        opt.param_groups[0]["lr"] = lr
        p.grad = _grad(p.detach())
        opt.step()
    torch.testing.assert_close(p.detach().double(), theta, rtol=1e-5, atol=1e-6)
    # torch's form (b ← βb + g; θ ← θ − ηb) lands elsewhere under the same rates ...
    q = nn.Parameter(theta0.clone())
    torch_opt = make_optimizer([q], "nesterov" if nesterov else "momentum", lr=0.1,
                               momentum=beta)
    for lr in _rates(n):
        torch_opt.param_groups[0]["lr"] = lr
        q.grad = _grad(q.detach())
        torch_opt.step()
    assert (q.detach() - p.detach()).abs().max() > 1e-3


def test_the_two_momentum_forms_agree_at_a_constant_rate():
    a, b = nn.Parameter(torch.tensor([1.0, -2.0, 0.5])), nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    oa = make_optimizer([a], "momentum", lr=0.05, momentum_form="keras")
    ob = make_optimizer([b], "momentum", lr=0.05)
    for _ in range(20):
        a.grad, b.grad = _grad(a.detach()), _grad(b.detach())
        oa.step()
        ob.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_keras_form_cycles_momentum_under_1cycle_and_takes_a_tensor_lr():
    from trainwell.optim import apply_schedule

    p = nn.Parameter(torch.ones(3))
    opt = make_optimizer([p], "momentum", lr=0.1, momentum_form="keras")
    sched = make_schedule("onecycle", base_lr=0.1, steps_per_epoch=5, epochs=2)
    apply_schedule(opt, sched, 3)
    assert opt.param_groups[0]["momentum"] == sched.momentum_at(3)
    opt.param_groups[0]["lr"] = torch.tensor(0.01)
    p.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.99))
    with pytest.raises(ConfigError, match="optimizer.momentum_form.*pytorch.*keras"):
        make_optimizer([p], "momentum", momentum_form="tf")


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_lean_nadam_matches_torch_nadam_and_loads_its_state(weight_decay):
    torch.manual_seed(0)
    ref, lean = nn.Linear(5, 3), nn.Linear(5, 3)
    lean.load_state_dict(ref.state_dict())
    o_ref = torch.optim.NAdam(ref.parameters(), lr=0.01, weight_decay=weight_decay, foreach=True)
    o_lean = make_optimizer(lean.parameters(), "nadam", lr=0.01, weight_decay=weight_decay)
    assert isinstance(o_lean, LeanNAdam)
    x = torch.randn(16, 5)
    for i in range(15):
        for model, opt in ((ref, o_ref), (lean, o_lean)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        if i == 7:  # a checkpoint of the lean one loads into torch's and back
            o_lean.load_state_dict(copy.deepcopy(o_ref.state_dict()))
    for a, b in zip(ref.parameters(), lean.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    s_ref, s_lean = o_ref.state_dict()["state"][0], o_lean.state_dict()["state"][0]
    assert float(s_ref["step"]) == float(s_lean["step"]) == 15
    torch.testing.assert_close(s_ref["mu_product"], s_lean["mu_product"])


def test_adamw_decay_below_float32_resolution_warns_and_trains_like_adam():
    with pytest.warns(WeightDecayResolutionWarning, match="rounds to 1 in float32"):
        make_optimizer([nn.Parameter(torch.ones(2))], "adamw", lr=1e-3, weight_decay=1e-5)
    # ... because it really does nothing: bit-identical to Adam.
    torch.manual_seed(0)
    a, b = nn.Linear(4, 2), nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightDecayResolutionWarning)
        oa = make_optimizer(a.parameters(), "adamw", lr=1e-3, weight_decay=1e-5)
    ob = make_optimizer(b.parameters(), "adam", lr=1e-3)
    x = torch.randn(8, 4)
    for _ in range(5):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            m(x).sum().backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightDecayResolutionWarning)
        make_optimizer([nn.Parameter(torch.ones(2))], "adamw", lr=1e-3, weight_decay=1e-2)
