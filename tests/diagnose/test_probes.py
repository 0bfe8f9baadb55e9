"""The probe's statistics against direct torch computations, layer discovery, cost rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trainwell.diagnose import GradientProbe, ProbeRecord, find_layers
from trainwell.diagnose.probes import SIGMOID_SATURATION, TANH_SATURATION
from trainwell.errors import ConfigError
from trainwell.nn import ACTIVATIONS, build_model, make_activation

_spec = importlib.util.spec_from_file_location("diagnose_test_helpers",
                                               Path(__file__).parent / "_helpers.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.Sigmoid(),
                         nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 4))


def test_find_layers_pairs_each_linear_with_the_activation_that_follows():
    layers = find_layers(_net())
    assert [(lay.name, lay.activation, lay.kind) for lay in layers] == [
        ("0", "1", "relu"), ("2", "3", "sigmoid"), ("4", "5", "tanh"), ("6", None, "none")]


def test_find_layers_on_builder_model_uses_block_names_and_skips_batch_norm():
    model = build_model(input_shape=(1, 4, 4), n_outputs=3, hidden=(8, 8), activation="elu",
                        batch_norm="before")
    layers = find_layers(model)
    assert [lay.label for lay in layers] == ["hidden1", "hidden2", "output"]
    assert [lay.activation for lay in layers] == ["hidden1.act", "hidden2.act", None]
    assert [lay.kind for lay in layers] == ["other", "other", "none"]


def test_shared_activation_instance_is_not_paired():
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act, nn.Linear(3, 2))
    assert [lay.activation for lay in find_layers(model)] == [None, None, None]


def test_model_without_weighted_layer_is_refused():
    with pytest.raises(ConfigError, match="nn.Linear or nn.Conv"):
        find_layers(nn.Sequential(nn.ReLU()))


def test_every_registered_activation_is_classified_as_its_metadata_says():
    for name, entry in ACTIVATIONS.items():
        m = make_activation(name, features=4)
        layers = find_layers(nn.Sequential(nn.Linear(3, 4), m))
        kind = layers[0].kind
        assert kind != "none", name
        assert (kind in ("sigmoid", "tanh")) == entry.meta["saturating"], name
        assert (kind == "relu") == entry.meta["can_die"], name


def test_bad_every_is_a_config_error():
    with pytest.raises(ConfigError, match="train.diagnose_every"):
        GradientProbe(every=0)


def test_statistics_equal_direct_torch_computations():
    """Oracle: one sampled step, recomputed by hand with plain torch."""
    model = _net()
    with torch.no_grad():   # make some ReLU units dead on this batch
        model[0].bias[:3] = -100.0
    x, y = helpers.synthetic(n=64, d=6)
    lr = 0.1
    ref = _net()
    ref.load_state_dict(model.state_dict())

    probe = GradientProbe(every=1)
    helpers.run_loop(model, probe, steps=1, lr=lr, bs=64, x=x, y=y)
    rec = probe.record()
    assert rec.steps.tolist() == [0]

    # the same step by hand
    outs = {}
    h = x
    for i, m in enumerate(ref):
        h = m(h)
        outs[i] = h.detach()
    nn.functional.cross_entropy(h, y).backward()
    linears = [0, 2, 4, 6]
    observed = [1, 3, 5, 6]
    grads = [torch.linalg.vector_norm(ref[i].weight.grad).item() for i in linears]
    w0 = [ref[i].weight.detach().clone() for i in linears]
    deltas = [torch.linalg.vector_norm(lr * ref[i].weight.grad).item() for i in linears]

    np.testing.assert_allclose(rec.column("grad_norm")[0], grads, rtol=1e-5)
    np.testing.assert_allclose(rec.column("weight_norm")[0],
                               [torch.linalg.vector_norm(w).item() for w in w0], rtol=1e-5)
    np.testing.assert_allclose(rec.column("update_norm")[0], deltas, rtol=1e-4)
    np.testing.assert_allclose(rec.column("ratio_to_last")[0], np.array(grads) / grads[-1],
                               rtol=1e-5)
    np.testing.assert_allclose(rec.column("act_mean")[0],
                               [outs[i].mean().item() for i in observed], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rec.column("act_std")[0],
                               [outs[i].std().item() for i in observed], rtol=1e-5)
    relu = outs[1]
    dead = float(np.mean([bool((relu[:, j] <= 0).all()) for j in range(relu.shape[1])]))
    assert dead >= 3 / 8
    assert rec.column("dead")[0, 0] == pytest.approx(dead)
    sig = outs[3]
    sat = ((sig < SIGMOID_SATURATION) | (sig > 1 - SIGMOID_SATURATION)).float().mean().item()
    assert rec.column("saturated")[0, 1] == pytest.approx(sat)
    tanh = outs[5]
    assert rec.column("saturated")[0, 2] == pytest.approx(
        (tanh.abs() > TANH_SATURATION).float().mean().item())
    # not applicable → NaN
    assert np.isnan(rec.column("saturated")[0, 0]) and np.isnan(rec.column("dead")[0, 1])
    # histograms count every element once
    assert rec.hists[0, 0, 0].sum() == relu.numel()
    assert rec.hists[0, 0, 1].sum() == ref[0].weight.numel()


def test_dead_units_of_a_convolution_are_channels_dead_at_every_position():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        conv.bias[:] = torch.tensor([-50.0, -50.0, 0.0, 50.0])
    x = torch.randn(16, 1, 8, 8)
    y = torch.randint(0, 3, (16,))
    probe = GradientProbe(every=1)
    helpers.run_loop(model, probe, steps=1, x=x, y=y, bs=16)
    assert probe.record().column("dead")[0, 0] == pytest.approx(0.5)


def test_only_sampled_steps_are_recorded_and_hooks_are_removed():
    model = _net()
    probe = GradientProbe(every=4)
    calls = []
    orig = probe._forward_hook

    def counting(i):
        hook = orig(i)

        def wrapped(*a):
            calls.append(i)
            return hook(*a)
        return wrapped

    probe._forward_hook = counting
    helpers.run_loop(model, probe, steps=10, x=helpers.synthetic(d=6)[0],
                     y=helpers.synthetic(d=6)[1])
    assert probe.record().steps.tolist() == [0, 4, 8]
    assert len(calls) == 3 * 4   # four observed modules, three sampled forwards
    assert all(not m._forward_hooks for m in model.modules())


def test_max_samples_thins_the_record_and_doubles_the_interval():
    model = _net()
    probe = GradientProbe(every=1, max_samples=4)
    x, y = helpers.synthetic(d=6)
    helpers.run_loop(model, probe, steps=9, x=x, y=y)
    rec = probe.record()
    assert len(rec) <= 4
    assert rec.steps[0] == 0 and rec.steps[-1] == 8
    assert np.all(np.diff(rec.steps) == probe.every)


def test_state_dict_round_trip_and_npz_round_trip(tmp_path):
    model = _net()
    probe = GradientProbe(every=2)
    x, y = helpers.synthetic(d=6)
    helpers.run_loop(model, probe, steps=6, x=x, y=y)
    other = GradientProbe(every=2, model=model)
    other.load_state_dict(probe.state_dict())
    np.testing.assert_array_equal(other.record().stats, probe.record().stats)
    path = probe.record().save(tmp_path / "probes.npz")
    back = ProbeRecord.load(path)
    np.testing.assert_allclose(back.stats, probe.record().stats, rtol=1e-6)
    assert back.layers == probe.record().layers and back.kinds == probe.record().kinds


def test_frozen_layer_has_no_gradient_and_is_not_flagged():
    from trainwell.diagnose import judge

    model = _net()
    model[0].weight.requires_grad_(False)
    probe = GradientProbe(every=1)
    x, y = helpers.synthetic(d=6)
    helpers.run_loop(model, probe, steps=3, x=x, y=y)
    d = judge(probe.record())
    assert np.isnan(probe.record().column("grad_norm")[:, 0]).all()
    assert "exploding" not in d.verdicts[0].flags


def test_divergence_between_samples_is_caught_at_fit_end():
    model = _net()
    probe = GradientProbe(every=100)
    x, y = helpers.synthetic(d=6)
    helpers.run_loop(model, probe, steps=3, x=x, y=y)
    assert len(probe.record()) == 1
    with torch.no_grad():
        model[2].weight.grad[0, 0] = float("nan")
    probe.on_fit_end(helpers.FakeTrainer(model))
    rec = probe.record()
    assert len(rec) == 2 and rec.column("grad_nonfinite")[-1, 1] == 1


def test_probe_works_inside_the_trainer_with_compile_and_only_on_sampled_steps():
    import warnings

    from trainwell.train import Trainer

    torch.manual_seed(0)
    model = _net()
    x, y = helpers.synthetic(n=256, d=6)
    probe = GradientProbe(every=3)
    assert [probe.needs_backward_hook(s) for s in range(4)] == [True, False, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(model, lr=0.01, callbacks=[probe], device="cpu", compile=True)
        trainer.fit(x, y, epochs=1, batch_size=32)
    rec = probe.record()
    assert rec.steps.tolist() == [0, 3, 6]
    assert np.isfinite(rec.column("act_std")).all() and (rec.column("update_norm") > 0).all()
