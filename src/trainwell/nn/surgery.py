"""Keep the lower blocks of a network and put a new output layer on top (transfer learning).

A *block* is a top-level child holding parameters (``conv1``, ``hidden2``, or the children of
your own ``nn.Sequential``); the children between blocks (pooling, ``Flatten``) stay with the
block below them. The new head's width is measured with one forward pass, so a network whose
reused part ends with a convolution gets a ``Flatten`` and a ``Linear`` of the right size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["parameter_blocks", "head_features", "keep_blocks", "truncated_config"]


def parameter_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The top-level children of ``model`` that hold parameters, bottom to top."""
    return [(name, child) for name, child in model.named_children()
            if any(True for _ in child.parameters())]


def head_features(kept: nn.Module, input_shape: Sequence[int]) -> tuple[int, bool]:
    """``(features, needs_flatten)`` of what ``kept`` outputs for one sample of ``input_shape``.

    One eval-mode forward on two zero samples (RNG and batch-norm statistics untouched).
    """
    ref = next(kept.parameters(), None)
    was_training = kept.training
    kept.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            x = torch.zeros(2, *input_shape, dtype=ref.dtype if ref is not None else None,
                            device=ref.device if ref is not None else None)
            out = kept(x)
    finally:
        kept.train(was_training)
    return math.prod(out.shape[1:]), out.dim() != 2


def keep_blocks(model: nn.Sequential, k: int, n_outputs: int, input_shape: Sequence[int]
                ) -> nn.Sequential:
    """The children of ``model`` below its (k+1)-th block (shared, not copied), then a
    ``flatten`` when needed and a new ``output`` ``nn.Linear`` (torch's default init)."""
    children = list(model.named_children())
    names = [name for name, _ in parameter_blocks(model)]
    cut = next(i for i, (name, _) in enumerate(children) if name == names[k])
    new = nn.Sequential()
    for name, child in children[:cut]:
        new.add_module(name, child)
    features, flat = head_features(new, input_shape)
    ref = next(new.parameters())
    if flat:
        new.add_module("flatten", nn.Flatten())
    new.add_module("output", nn.Linear(features, n_outputs, device=ref.device, dtype=ref.dtype))
    return new


def truncated_config(config: dict, k: int, n_outputs: int, task: str) -> tuple[dict, int]:
    """The ``trainwell_config`` of a CNN or factory network cut after its k-th block, and the
    number of dense blocks still to keep (0: the config is complete)."""
    cfg = dict(config)
    if cfg.get("kind") == "module":   # rebuilt by the factory, then cut (keep_blocks)
        cfg.setdefault("source_n_outputs", cfg["n_outputs"])
        cfg.update(n_outputs=int(n_outputs), task=task, reuse=k)
        return cfg, 0
    conv = list(cfg["conv"])
    convs = [i for i, c in enumerate(conv) if isinstance(c, list)]
    if k > len(convs):                 # every conv block, then k − n_conv dense ones
        cfg.update(n_outputs=int(n_outputs), task=task)
        return cfg, k - len(convs)
    end = convs[k] if k < len(convs) else len(conv)   # the pools after conv k stay with it
    cfg.update(conv=conv[:end], hidden=[], dropout=0.0, dropout_top_k=0,
               n_outputs=int(n_outputs), task=task)
    return cfg, 0
