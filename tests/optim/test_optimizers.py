"""Optimizers against the update rules written in the chapter, on a tiny quadratic.

J(θ) = ½ Σ aᵢ θᵢ², so ∇J(θ) = a ⊙ θ is known in closed form; each oracle below recomputes
θ by hand in float64 and the torch-backed optimizer must agree to float precision.
"""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from trainwell.errors import ConfigError
from trainwell.optim import OPTIMIZERS, make_optimizer

A = np.array([1.0, 4.0, 0.5])
THETA0 = np.array([1.0, -2.0, 3.0])


def grad(theta):
    return A * theta


def run_torch(name, steps=3, **hp):
    p = nn.Parameter(torch.tensor(THETA0, dtype=torch.float64))
    opt = make_optimizer([p], name, **hp)
    a = torch.tensor(A, dtype=torch.float64)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (a * p * p).sum()).backward()
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def test_sgd_matches_plain_gradient_descent():
    lr, theta, want = 0.1, THETA0.copy(), []
    for _ in range(3):
        theta = theta - lr * grad(theta)
        want.append(theta)
    np.testing.assert_allclose(run_torch("sgd", lr=lr, momentum=0.9), want, rtol=1e-12)


def test_momentum_matches_seed_rule_m_beta_m_minus_eta_g():
    # Seed: m ← βm − η∇J(θ); θ ← θ + m. Torch keeps b = −m/η; same trajectory at fixed η.
    lr, beta, theta, m, want = 0.1, 0.9, THETA0.copy(), np.zeros(3), []
    for _ in range(3):
        m = beta * m - lr * grad(theta)
        theta = theta + m
        want.append(theta)
    np.testing.assert_allclose(run_torch("momentum", lr=lr, momentum=beta), want, rtol=1e-12,
                               atol=1e-12)


def test_nesterov_equals_seed_rule_at_the_look_ahead_point():
    # Seed: m ← βm − η∇J(θ + βm); θ ← θ + m. Torch's reformulation stores φ = θ + βm,
    # so torch's parameter after each step must equal the chapter's θ + βm.
    lr, beta, theta, m, want = 0.1, 0.9, THETA0.copy(), np.zeros(3), []
    for _ in range(3):
        m = beta * m - lr * grad(theta + beta * m)
        theta = theta + m
        want.append(theta + beta * m)
    np.testing.assert_allclose(run_torch("nesterov", lr=lr, momentum=beta), want, rtol=1e-12)


def test_nesterov_differs_from_plain_momentum():
    a = run_torch("nesterov", lr=0.1, momentum=0.9)[-1]
    b = run_torch("momentum", lr=0.1, momentum=0.9)[-1]
    assert not np.allclose(a, b)


def test_adagrad_with_torch_defaults_matches_hand_rule():
    # Torch: s starts at initial_accumulator (0.1, like Keras), ε outside the root.
    lr, eps, s0 = 0.5, 1e-7, 0.1
    theta, s, want = THETA0.copy(), np.full(3, s0), []
    for _ in range(3):
        g = grad(theta)
        s = s + g * g
        theta = theta - lr * g / (np.sqrt(s) + eps)
        want.append(theta)
    np.testing.assert_allclose(run_torch("adagrad", lr=lr, epsilon=eps), want, rtol=1e-12)


def test_adagrad_reproduces_seed_formula_exactly_with_epsilon_as_initial_accumulator():
    # Seed: s ← s + g⊗g (s₀ = 0); θ ← θ − η g ⊘ √(s + ε). Starting torch's accumulator at ε
    # and making its outer ε negligible gives √(ε + Σg²): the chapter's formula exactly.
    lr, eps = 0.5, 1e-3
    theta, s, want = THETA0.copy(), np.zeros(3), []
    for _ in range(3):
        g = grad(theta)
        s = s + g * g
        theta = theta - lr * g / np.sqrt(s + eps)
        want.append(theta)
    got = run_torch("adagrad", lr=lr, epsilon=1e-300, initial_accumulator=eps)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_rmsprop_matches_seed_rule_with_rho():
    # Seed: s ← ρs + (1 − ρ)g⊗g; θ ← θ − η g ⊘ √(s + ε). Torch puts ε outside the root:
    # exact against that placement, and within 1e-6 of the chapter's placement.
    lr, rho, eps = 0.01, 0.9, 1e-7
    theta_t, theta_s, s_t, s_s, want_t, want_s = THETA0.copy(), THETA0.copy(), 0.0, 0.0, [], []
    for _ in range(3):
        g = grad(theta_t)
        s_t = rho * s_t + (1 - rho) * g * g
        theta_t = theta_t - lr * g / (np.sqrt(s_t) + eps)
        want_t.append(theta_t)
        g = grad(theta_s)
        s_s = rho * s_s + (1 - rho) * g * g
        theta_s = theta_s - lr * g / np.sqrt(s_s + eps)
        want_s.append(theta_s)
    got = run_torch("rmsprop", lr=lr, rho=rho, epsilon=eps, momentum=0.9)  # momentum ignored
    np.testing.assert_allclose(got, want_t, rtol=1e-12)
    np.testing.assert_allclose(got, want_s, rtol=1e-6)


def _adam_seed(lr, b1, b2, eps, steps=3, outer_eps=True):
    # Seed (Eq. 11-8): m ← β1m − (1−β1)g; s ← β2s + (1−β2)g⊗g; m̂, ŝ bias-corrected;
    # θ ← θ + η m̂ ⊘ √(ŝ + ε). outer_eps=True uses torch's √ŝ + ε instead.
    theta, m, s, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t in range(1, steps + 1):
        g = grad(theta)
        m = b1 * m - (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        m_hat, s_hat = m / (1 - b1**t), s / (1 - b2**t)
        denom = np.sqrt(s_hat) + eps if outer_eps else np.sqrt(s_hat + eps)
        theta = theta + lr * m_hat / denom
        out.append(theta)
    return out


def test_adam_matches_seed_rule_with_bias_correction():
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-7
    got = run_torch("adam", lr=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    np.testing.assert_allclose(got, _adam_seed(lr, b1, b2, eps), rtol=1e-12)
    np.testing.assert_allclose(got, _adam_seed(lr, b1, b2, eps, outer_eps=False), rtol=1e-6)
    # Bias correction makes the first step ≈ η·sign(g) in every coordinate.
    np.testing.assert_allclose(np.abs(got[0] - THETA0), lr, rtol=1e-4)


def test_adamax_matches_infinity_norm_rule():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    theta, m, u, want = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t in range(1, 4):
        g = grad(theta)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - lr / (1 - b1**t) * m / u
        want.append(theta)
    got = run_torch("adamax", lr=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_nadam_matches_adam_with_nesterov_trick():
    # Dozat's Nadam as in Keras/torch: momentum schedule μ_t = β1(1 − ½·0.96^(0.004·t)).
    lr, b1, b2, eps, psi = 0.01, 0.9, 0.999, 1e-7, 0.004
    theta, m, s, mu_prod, want = THETA0.copy(), np.zeros(3), np.zeros(3), 1.0, []
    for t in range(1, 4):
        g = grad(theta)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_prod *= mu
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        denom = np.sqrt(s / (1 - b2**t)) + eps
        theta = (theta - lr * (1 - mu) / (1 - mu_prod) * g / denom
                 - lr * mu_next / (1 - mu_prod * mu_next) * m / denom)
        want.append(theta)
    got = run_torch("nadam", lr=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    # torch keeps the running product of μ in float32, hence 1e-8 rather than 1e-12.
    np.testing.assert_allclose(got, want, rtol=1e-8)
    assert not np.allclose(got[-1], run_torch("adam", lr=lr, beta_1=b1, beta_2=b2,
                                              epsilon=eps)[-1])


def test_adamw_decouples_weight_decay():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-7, 0.1
    theta, m, s, want = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t in range(1, 4):
        g = grad(theta)
        theta = theta * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        want.append(theta)
    got = run_torch("adamw", lr=lr, beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=wd)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sgd_weight_decay_is_l2_added_to_the_gradient():
    lr, wd, theta = 0.1, 0.01, THETA0.copy()
    theta = theta - lr * (grad(theta) + wd * theta)
    np.testing.assert_allclose(run_torch("sgd", steps=1, lr=lr, weight_decay=wd)[0], theta,
                               rtol=1e-12)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_lowers_a_quadratic(name):
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(10) * 3)
    target = torch.linspace(-1, 1, 10)
    # AdaGrad's rates only shrink ("stops too early"), so it gets a larger η0.
    opt = make_optimizer([p], name, lr=0.5 if name == "adagrad" else 0.05)
    loss0 = ((p - target) ** 2).sum().item()
    for _ in range(100):
        opt.zero_grad()
        ((p - target) ** 2).sum().backward()
        opt.step()
    assert ((p - target) ** 2).sum().item() < 0.5 * loss0


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_state_dict_round_trip_resumes_identically(name):
    def fresh():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
        return model, make_optimizer(model, name, lr=0.01)

    x, y = torch.randn(8, 4), torch.randn(8, 1)

    def train(model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()

    model_a, opt_a = fresh()
    train(model_a, opt_a, 3)
    saved_model = {k: v.clone() for k, v in model_a.state_dict().items()}
    saved_opt = copy.deepcopy(opt_a.state_dict())  # state_dict shares live tensors
    train(model_a, opt_a, 3)

    model_b, opt_b = fresh()
    model_b.load_state_dict(saved_model)
    opt_b.load_state_dict(saved_opt)
    train(model_b, opt_b, 3)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_registry_metadata_describes_each_optimizer(name):
    entry = OPTIMIZERS.get(name)
    assert entry.description and entry.meta["update_rule"]
    assert "lr" in entry.meta["defaults"]
    opt = make_optimizer([nn.Parameter(torch.zeros(2))], name)
    assert isinstance(opt, entry.obj.cls)
    # One fused kernel where torch has one, the multi-tensor kernels otherwise.
    if entry.obj.fused:
        assert opt.defaults.get("fused") is True
    else:
        assert opt.defaults.get("foreach") is True


def test_hyperparameters_reach_torch_under_their_seed_names():
    p = [nn.Parameter(torch.zeros(2))]
    assert make_optimizer(p, "momentum", momentum=0.8).defaults["momentum"] == 0.8
    assert make_optimizer(p, "sgd", momentum=0.8).defaults["momentum"] == 0.0
    assert make_optimizer(p, "rmsprop", rho=0.7).defaults["alpha"] == 0.7
    adam = make_optimizer(p, "adam", beta_1=0.8, beta_2=0.9, epsilon=1e-5)
    assert adam.defaults["betas"] == (0.8, 0.9) and adam.defaults["eps"] == 1e-5
    assert make_optimizer(p, "adagrad").defaults["initial_accumulator_value"] == 0.1
    assert make_optimizer(p, "NAG").defaults["nesterov"] is True


def test_param_groups_keep_their_lr_scale():
    head, body = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = make_optimizer([{"params": [body], "lr_scale": 0.1}, {"params": [head]}], "adam",
                         lr=0.01)
    assert math.isclose(opt.param_groups[0]["lr"], 0.001)
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["lr_scale"] == 1.0


def test_irrelevant_hyperparameters_are_ignored_even_if_invalid():
    make_optimizer([nn.Parameter(torch.zeros(1))], "adam", momentum=5.0, rho=-1)
    make_optimizer([nn.Parameter(torch.zeros(1))], "sgd", beta_1=2.0, epsilon=0)


@pytest.mark.parametrize("name,kwargs,field", [
    ("sgd", {"lr": 0}, "optimizer.lr"),
    ("sgd", {"lr": -0.1}, "optimizer.lr"),
    ("sgd", {"lr": float("nan")}, "optimizer.lr"),
    ("momentum", {"momentum": 1.0}, "optimizer.momentum"),
    ("momentum", {"momentum": -0.1}, "optimizer.momentum"),
    ("nesterov", {"momentum": 0.0}, "optimizer.momentum"),
    ("adam", {"beta_1": 1.0}, "optimizer.beta_1"),
    ("nadam", {"beta_2": -0.5}, "optimizer.beta_2"),
    ("rmsprop", {"rho": 1.5}, "optimizer.rho"),
    ("adam", {"epsilon": 0}, "optimizer.epsilon"),
    ("adamw", {"weight_decay": -1e-3}, "optimizer.weight_decay"),
    ("adagrad", {"initial_accumulator": -1}, "optimizer.initial_accumulator"),
    ("sgd", {"lr": True}, "optimizer.lr"),
])
def test_bad_values_raise_config_error_naming_the_field(name, kwargs, field):
    with pytest.raises(ConfigError) as err:
        make_optimizer([nn.Parameter(torch.zeros(1))], name, **kwargs)
    assert err.value.field == field
    assert field in str(err.value)


def test_unknown_optimizer_lists_the_accepted_names():
    with pytest.raises(ConfigError) as err:
        make_optimizer([nn.Parameter(torch.zeros(1))], "adamm")
    assert err.value.field == "optimizer.name"
    assert "nadam" in str(err.value) and "rmsprop" in str(err.value)


def test_empty_parameter_list_is_a_config_error():
    with pytest.raises(ConfigError, match="optimizer.params"):
        make_optimizer([], "sgd")
