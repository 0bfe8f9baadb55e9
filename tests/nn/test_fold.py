"""Folding batch norm into the linear layers is exact at inference."""

import pytest
import torch
from torch import nn

from trainwell.nn import build_model, fold_batch_norm, load_model, save_model


def _with_statistics(**kwargs):
    torch.manual_seed(0)
    model = build_model(input_shape=(3, 4), n_outputs=5, hidden=[16, 8, 6], **kwargs)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
    model.train()
    for _ in range(5):
        model(torch.randn(64, 3, 4) * 3 + 1)      # running statistics far from 0/1
    return model.eval()


@pytest.mark.parametrize("place", ["before", "after"])
def test_folded_model_matches_batch_norm_model_in_eval(place, tmp_path):
    model = _with_statistics(batch_norm=place, activation="elu", dropout=0.2)
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())   # original untouched
    x = torch.randn(32, 3, 4) * 3 + 1
    assert torch.allclose(folded(x), model(x), atol=1e-5, rtol=1e-5)
    assert folded.trainwell_config["batch_norm"] == "none"
    assert sum(p.numel() for p in folded.parameters()) < sum(p.numel() for p in model.parameters())
    save_model(folded, tmp_path)
    assert torch.allclose(load_model(tmp_path)(x), folded(x))


def test_fold_without_batch_norm_is_a_plain_copy_and_folds_any_sequential():
    model = _with_statistics()
    x = torch.randn(4, 3, 4)
    assert torch.equal(fold_batch_norm(model)(x), model(x))
    plain = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    folded = fold_batch_norm(plain)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    x = torch.randn(5, 2)
    assert torch.allclose(folded(x), plain(x), atol=1e-6)



@pytest.mark.parametrize("place", ["none", "before", "after"])
def test_input_batch_norm_folds_into_the_first_linear_layer(place, tmp_path):
    model = _with_statistics(batch_norm=place, input_batch_norm=True)
    assert hasattr(model, "input_bn")
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    x = torch.randn(32, 3, 4) * 3 + 1
    assert torch.allclose(folded(x), model(x), atol=1e-5, rtol=1e-5)
    save_model(folded, tmp_path)
    assert torch.allclose(load_model(tmp_path)(x), folded(x))
