"""Activation functions with the metadata trainwell needs to use them well.

Each entry of :data:`ACTIVATIONS` carries:

- ``family``: ``"saturating"`` (sigmoid, tanh), ``"relu"`` (ReLU and its leaky variants),
  ``"elu"`` (ELU, SELU) or ``"smooth"`` (GELU, Swish, Mish);
- ``init``: the initializer ``init="auto"`` picks for it (Table 11-1: glorot for
  none/tanh/sigmoid/softmax, he for the ReLU family, ELU, GELU, Swish and Mish, lecun for SELU);
- ``saturating``: the gradient vanishes for large |z| on both sides (sigmoid, tanh);
- ``can_die``: units can get stuck outputting 0 with zero gradient (plain ReLU);
- ``alpha``: default of the ``alpha`` argument when the function takes one, else ``None``;
- ``self_normalizing``: SELU only.

The gradient diagnosis reads ``saturating`` and ``can_die`` to explain what it sees.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainwell.errors import ConfigError
from trainwell.registry import Registry

__all__ = ["ACTIVATIONS", "make_activation", "auto_initializer", "list_activations"]

ACTIVATIONS = Registry("activation")

# Activations that are not in the registry (no hidden-layer use) but that auto init knows.
_LINEAR_LIKE = ("none", "linear", "identity", "softmax")


def _register(name: str, factory: Callable[..., nn.Module], *, description: str, family: str,
              init: str, saturating: bool = False, can_die: bool = False,
              alpha: float | None = None, self_normalizing: bool = False,
              aliases: tuple[str, ...] = ()) -> None:
    ACTIVATIONS.register(name, factory, description=description, aliases=aliases,
                         family=family, init=init, saturating=saturating, can_die=can_die,
                         alpha=alpha, self_normalizing=self_normalizing)


_register("sigmoid", lambda alpha, features: nn.Sigmoid(), description="σ(z) = 1 / (1 + e^-z)",
          family="saturating", init="glorot", saturating=True, aliases=("logistic",))
_register("tanh", lambda alpha, features: nn.Tanh(), description="tanh(z)",
          family="saturating", init="glorot", saturating=True)
_register("relu", lambda alpha, features: nn.ReLU(), description="max(0, z)",
          family="relu", init="he", can_die=True)
_register("leaky_relu", lambda alpha, features: nn.LeakyReLU(negative_slope=alpha),
          description="max(αz, z), α = 0.01 by default", family="relu", init="he",
          alpha=0.01, aliases=("lrelu", "leakyrelu"))
_register("rrelu", lambda alpha, features: nn.RReLU(),
          description="leaky ReLU with α drawn from U(1/8, 1/3) in training, its mean at eval",
          family="relu", init="he")
_register("prelu",
          lambda alpha, features: nn.PReLU(num_parameters=features or 1, init=alpha),
          description="max(αz, z) with α learned per unit (initial α = 0.25)",
          family="relu", init="he", alpha=0.25)
_register("elu", lambda alpha, features: nn.ELU(alpha=alpha),
          description="z if z > 0 else α(e^z − 1), α = 1", family="elu", init="he", alpha=1.0)
_register("selu", lambda alpha, features: nn.SELU(),
          description="λ·ELU_α(z), λ ≈ 1.0507, α ≈ 1.6733: self-normalizing with lecun init",
          family="elu", init="lecun", self_normalizing=True)
_register("gelu", lambda alpha, features: nn.GELU(), description="z·Φ(z)",
          family="smooth", init="he")
_register("swish", lambda alpha, features: nn.SiLU(), description="z·σ(z) (SiLU)",
          family="smooth", init="he", aliases=("silu",))
_register("mish", lambda alpha, features: nn.Mish(), description="z·tanh(softplus(z))",
          family="smooth", init="he")


def list_activations() -> list[str]:
    """Names of every registered activation, in registration order."""
    return ACTIVATIONS.names()


def make_activation(name: str, *, alpha: float | None = None, features: int | None = None,
                    field: str = "model.activation",
                    alpha_field: str = "model.leaky_slope") -> nn.Module:
    """A fresh activation module.

    Args:
        name: a name of :data:`ACTIVATIONS` (case-insensitive; aliases such as ``"silu"`` work).
        alpha: the slope/scale of leaky_relu (default 0.01), elu (1.0) and the initial α of
            prelu (0.25); ignored by the other activations.
        features: number of units, so that prelu learns one α per unit (Keras ``PReLU``);
            ``None`` = one shared α.
        field: the field named when ``name`` is unknown.
        alpha_field: the field named when ``alpha`` is not a finite number ≥ 0.

    Example:
        >>> make_activation("leaky_relu", alpha=0.2)
        LeakyReLU(negative_slope=0.2)
    """
    entry = ACTIVATIONS.get(name, field=field)
    default = entry.meta["alpha"]
    if default is None:
        return entry.obj(None, features)
    value = default if alpha is None else alpha
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value \
            or value < 0 or value == float("inf"):
        raise ConfigError(alpha_field, alpha, "a finite number ≥ 0")
    return entry.obj(float(value), features)


def auto_initializer(activation: str | None) -> str:
    """The initializer Table 11-1 matches to ``activation``: ``"glorot"``, ``"he"`` or ``"lecun"``.

    glorot for none/linear/tanh/sigmoid/softmax, he for the ReLU family, ELU, GELU, Swish and
    Mish, lecun for SELU.

    Example:
        >>> auto_initializer("selu"), auto_initializer("relu"), auto_initializer(None)
        ('lecun', 'he', 'glorot')
    """
    if activation is None or str(activation).strip().lower() in _LINEAR_LIKE:
        return "glorot"
    return ACTIVATIONS.get(activation, field="model.activation").meta["init"]
