"""Plain-PyTorch versions of the benchmark networks (what a user would write by hand)."""

from __future__ import annotations

import torch
from torch import nn


def plain_model(w) -> nn.Sequential:
    act = {"selu": nn.SELU, "swish": nn.SiLU}[w.activation]
    layers: list[nn.Module] = []
    fan_in = w.n_inputs
    for units in w.hidden:
        lin = nn.Linear(fan_in, units)
        if w.init == "lecun":
            nn.init.normal_(lin.weight, std=(1.0 / fan_in) ** 0.5)
        else:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if w.batch_norm:
            layers.append(nn.BatchNorm1d(units, momentum=0.01))
        layers.append(act())
        fan_in = units
    layers.append(nn.Linear(fan_in, w.n_classes))
    return nn.Sequential(*layers)


def plain_optimizer(w, params):
    if w.optimizer == "sgd":
        return torch.optim.SGD(params, lr=w.lr)
    return torch.optim.NAdam(params, lr=w.lr)
