"""Weight constraints applied after each optimizer step."""

from __future__ import annotations

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["apply_max_norm", "max_norm_layers", "MAX_NORM_LAYERS"]


#: The layer types max-norm constrains (found by type, never by name).
MAX_NORM_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)


def max_norm_layers(model: nn.Module, *, include_output: bool = False) -> list[nn.Module]:
    """The ``nn.Linear`` and ``nn.Conv*`` layers max-norm acts on: all but the output layer.

    The output layer is the child named ``output`` (the builder's logits layer), or, for any
    other module, the last ``nn.Linear`` in registration order.
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, MAX_NORM_LAYERS)
              and getattr(m, "weight", None) is not None]
    linears = [(name, m) for name, m in layers if isinstance(m, nn.Linear)]
    if include_output or not linears:
        return [m for _, m in layers]
    named_output = [m for name, m in linears if name == "output"]
    output = named_output[0] if named_output else linears[-1][1]
    return [m for _, m in layers if m is not output]


def apply_max_norm(model: nn.Module, r: float, *, include_output: bool = False) -> None:
    """Max-norm regularization: rescale each unit's incoming weight vector to ‖w‖₂ ≤ r.

    For every hidden ``nn.Linear`` (weight shaped ``(units, inputs)``) each row w becomes
    w · min(1, r / ‖w‖₂), in place and under ``no_grad`` (Keras ``max_norm(r)`` on a Dense
    kernel, whose columns are trainwell's rows). For a convolution the vector is one
    filter's whole kernel (in_channels × k × k), as Keras ``max_norm`` on a Conv2D kernel. Like the chapter's examples, which set the
    constraint on hidden layers, the output layer is left alone unless ``include_output``.
    Runs on the device, with no host sync; call it after every optimizer step.

    Args:
        model: any module; its ``nn.Linear`` and ``nn.Conv*`` layers are constrained.
        r: the max norm, > 0; 0 means no constraint (nothing is done).
        include_output: constrain the output layer too. Default ``False``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> apply_max_norm(model, 1.0)
        >>> bool((model[0].weight.norm(dim=1) <= 1.0 + 1e-6).all())
        True
    """
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not r >= 0 \
            or r == float("inf"):
        raise ConfigError("regularization.max_norm", r, "a finite number ≥ 0 (0 = off)")
    if r == 0:
        return
    with torch.no_grad():
        for layer in max_norm_layers(model, include_output=include_output):
            w = layer.weight
            dims = tuple(range(1, w.dim()))  # all but the unit/filter axis
            norms = torch.linalg.vector_norm(w, dim=dims, keepdim=True)
            # r / max(‖w‖, r) is 1 for rows already inside the ball and never divides by 0.
            w.mul_(r / norms.clamp(min=r))
