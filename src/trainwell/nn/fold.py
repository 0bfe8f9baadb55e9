"""Batch norm folded into the layer before it, for any network (Linear and Conv, by type).

At eval a batch norm is the per-channel affine map z·s + t with s = γ/√(σ²+ε) and
t = β − μ·s. When it reads the output of a Linear or Conv layer directly (``batch_norm =
"before"`` in trainwell's blocks, or any ``nn.Sequential`` of your own with that order), it
folds into that layer: W ← s·W (per output unit / filter), b ← s·b + t.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fold_adjacent_batch_norms", "FOLDABLE"]

#: Layers a following batch norm folds into.
FOLDABLE: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)
_BN = nn.modules.batchnorm._BatchNorm


def _bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) with bn(z) = z·s + t at eval: s = γ/√(σ²+ε), t = β − μ·s."""
    s = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        s = s * bn.weight
    t = -bn.running_mean * s
    if bn.bias is not None:
        t = t + bn.bias
    return s, t


def _folded(layer: nn.Module, bn: nn.Module) -> nn.Module:
    s, t = _bn_affine(bn)
    new = copy.deepcopy(layer)
    w = layer.weight
    if new.bias is None:  # a layer without bias (BN's β replaced it) gets one back
        new.bias = nn.Parameter(torch.zeros(w.shape[0], device=w.device, dtype=w.dtype))
    shape = (-1,) + (1,) * (w.dim() - 1)
    new.weight.copy_(w * s.reshape(shape))
    bias = layer.bias * s + t if layer.bias is not None else t
    new.bias.copy_(bias)
    return new


def fold_adjacent_batch_norms(model: nn.Module) -> tuple[nn.Module, int, int]:
    """``(folded copy in eval mode, batch norms folded, batch norms left)``.

    Every batch norm that directly follows a Linear/Conv layer inside an ``nn.Sequential``
    with matching channels is folded into it and replaced by ``nn.Identity``; the others
    (e.g. after an activation) stay in place, which is still exact at eval. The argument is
    not modified.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        >>> folded, done, left = fold_adjacent_batch_norms(net)
        >>> done, left, type(folded[1]).__name__
        (1, 0, 'Identity')
    """
    folded = copy.deepcopy(model).eval()
    done = 0
    with torch.no_grad():
        for parent in list(folded.modules()):
            if not isinstance(parent, nn.Sequential):
                continue
            names = [n for n, _ in parent.named_children()]
            for prev, name in zip(names, names[1:], strict=False):
                layer, bn = parent._modules[prev], parent._modules[name]
                if (isinstance(bn, _BN) and isinstance(layer, FOLDABLE)
                        and bn.track_running_stats and bn.running_var is not None
                        and layer.weight.shape[0] == bn.num_features):
                    parent._modules[prev] = _folded(layer, bn)
                    parent._modules[name] = nn.Identity()
                    done += 1
    left = sum(isinstance(m, _BN) for m in folded.modules())
    return folded.eval(), done, left
