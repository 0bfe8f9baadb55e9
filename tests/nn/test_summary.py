"""model_summary: per-layer output shapes and parameter counts, Keras-like."""

import torch
from torch import nn

from trainwell.nn import build_model, model_summary


def test_summary_rows_shapes_and_param_counts_of_a_builder_model():
    model = build_model(input_shape=(28, 28), n_outputs=10, hidden=[300, 100],
                        batch_norm="before", dropout=0.2)
    s = model_summary(model, (28, 28))
    rows = {r.name: r for r in s.rows}
    assert rows["flatten"].output_shape == "(None, 784)"
    assert rows["hidden1.linear"].params == 784 * 300            # no bias before BN
    assert rows["hidden1.bn"].params == 2 * 300                  # γ and β
    assert rows["hidden2.dropout"].output_shape == "(None, 100)"
    assert rows["output"].params == 100 * 10 + 10 and rows["output"].output_shape == "(None, 10)"
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert s.trainable_params == s.total_params and s.non_trainable_params == 0
    text = str(s)
    assert "hidden1.linear" in text and f"Total params: {784*300 + 600 + 300*100 + 200 + 1010:,}" in text
    assert s.to_dict()["rows"][0]["name"] == "flatten"


def test_summary_counts_frozen_parameters_and_leaves_the_model_untouched():
    model = build_model(input_shape=5, n_outputs=2, hidden=[4, 3], batch_norm="after")
    for p in model.hidden1.parameters():
        p.requires_grad_(False)
    model.train()
    running = model.hidden1.bn.running_mean.clone()
    s = model_summary(model, 5)
    frozen = 5 * 4 + 4 + 2 * 4
    assert s.non_trainable_params == frozen
    assert s.trainable_params == s.total_params - frozen
    rows = {r.name: r for r in s.rows}
    assert not rows["hidden1.linear"].trainable and rows["hidden2.linear"].trainable
    assert "Non-trainable params: 32" in str(s)
    assert model.training and model.hidden1.bn.training
    assert torch.equal(model.hidden1.bn.running_mean, running)


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.body = nn.Sequential(nn.Linear(3, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.body(x * self.scale)), x


def test_summary_works_on_any_module():
    s = model_summary(Custom(), [3])
    rows = {r.name: r for r in s.rows}
    assert set(rows) == {"body.0", "body.1", "head"}
    assert rows["body.0"].output_shape == "(None, 6)"
    assert s.total_params == 3 + 3 * 6 + 6 + 6 * 2 + 2
    single = model_summary(nn.Linear(4, 2), 4)
    assert [r.name for r in single.rows] == ["Linear"] and single.total_params == 10


def test_summary_of_a_double_precision_model():
    model = build_model(input_shape=3, n_outputs=2, hidden=[4]).double()
    assert model_summary(model, 3).rows[-1].output_shape == "(None, 2)"
