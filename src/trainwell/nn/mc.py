"""Monte Carlo dropout: dropout stays active at inference, everything else in eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.dropout import _DropoutNd

__all__ = ["mc_dropout_mode"]


@contextmanager
def mc_dropout_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode except its dropout modules, which stay stochastic.

    Every ``nn.Dropout``, ``nn.AlphaDropout`` (any ``_DropoutNd`` subclass) is in training
    mode; batch norm and everything else is in eval mode, so batch norm uses — and does not
    update — its running statistics. The previous mode of every module is restored on exit.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
        >>> with mc_dropout_mode(model):
        ...     samples = [model(x) for _ in range(10)]     # doctest: +SKIP
    """
    previous = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, _DropoutNd):
                m.train()
        yield model
    finally:
        for m, mode in previous:
            m.training = mode
