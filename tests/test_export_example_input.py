"""export_model(example_input=...): a hand-built module exports without a splits object."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwell.errors import DataError
from trainwell.export import export_model


class Net(nn.Module):  # built by hand: no trainwell_config, no recorded input shape
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.body(x)


def test_a_custom_module_exports_with_example_input(tmp_path):
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(5, 6)
    with pytest.raises(DataError, match="example_input"):
        export_model(net, out=tmp_path, timing_repeats=1, large_batch=4)
    res = export_model(net, example_input=x, out=tmp_path, timing_repeats=1, large_batch=4)
    scripted = torch.jit.load(str(res.folder / "model.torchscript.pt"))
    assert torch.allclose(scripted(x), net(x), atol=1e-5)
    with pytest.raises(DataError, match="example_input.*do not fit"):
        export_model(net, example_input=torch.randn(4, 7), out=tmp_path)
