"""mc_dropout_mode: dropout stochastic, batch norm frozen in eval, modes restored."""

import torch
from torch import nn

from trainwell.nn import build_model, mc_dropout_mode


def test_mc_dropout_mode_keeps_batch_norm_in_eval_and_dropout_stochastic():
    torch.manual_seed(0)
    model = build_model(input_shape=6, n_outputs=3, hidden=[16, 16], batch_norm="before",
                        dropout=0.5, input_dropout=0.2)
    model.train()
    model(torch.randn(64, 6))                     # give BN some running statistics
    stats = [model.hidden1.bn.running_mean.clone(), model.hidden1.bn.running_var.clone()]
    batches = model.hidden1.bn.num_batches_tracked.clone()
    x = torch.randn(8, 6)
    with mc_dropout_mode(model):
        assert not model.training and not model.hidden1.bn.training
        assert model.hidden1.dropout.training and model.input_dropout.training
        a, b = model(x), model(x)
        assert not torch.allclose(a, b)           # dropout is active
    assert torch.equal(model.hidden1.bn.running_mean, stats[0])
    assert torch.equal(model.hidden1.bn.running_var, stats[1])
    assert torch.equal(model.hidden1.bn.num_batches_tracked, batches)
    assert all(m.training for m in model.modules())          # previous modes restored


def test_mc_dropout_mode_handles_alpha_dropout_and_restores_eval():
    model = nn.Sequential(nn.Linear(4, 4), nn.SELU(), nn.AlphaDropout(0.3), nn.Dropout2d(0.1))
    model.eval()
    with mc_dropout_mode(model) as m:
        assert m is model
        assert model[2].training and model[3].training and not model[0].training
    assert not any(m.training for m in model.modules())


def test_mc_dropout_mode_restores_modes_after_an_exception():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.eval()
    try:
        with mc_dropout_mode(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not model[1].training
