"""Model transforms for deployment: pruning, reduced precision, parameter counts.

The low-latency guideline of the chapter: fold batch norm into the previous layer (see
:func:`trainwell.nn.fold_batch_norm`), make the model sparse (l1 and zeroing tiny weights),
and reduce float precision to 16 or 8 bits. Every function here returns a new module and
leaves its argument untouched.
"""

from __future__ import annotations

import copy
import math
import warnings
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from trainwell.errors import ConfigError, TrainwellError

__all__ = ["PRECISIONS", "DTYPES", "prune_model", "kernel_sparsity", "count_parameters",
           "to_precision", "DeployedModel", "linear_kernels"]

#: Precisions of :func:`to_precision`.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: The float type each precision computes in (int8: dynamic quantization, float32 in and out).
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
          "int8": torch.float32}


@contextmanager
def _quiet_quantization():
    # torch.ao.quantization warns that it moves to torchao; it still works in this torch,
    # and the user cannot act on the warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        yield


def _dynamic_linear_class() -> type | None:
    try:
        with _quiet_quantization():
            from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    except ImportError:   # a torch without eager quantization
        return None
    return DynamicLinear


def linear_kernels(model: nn.Module) -> list[Tensor]:
    """The weight matrices of every linear layer (dequantized for int8 layers), in order."""
    dyn = _dynamic_linear_class()
    out = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            out.append(m.weight.detach())
        elif dyn is not None and isinstance(m, dyn):
            out.append(m.weight().dequantize())
    return out


def kernel_sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the weights of the linear layers (biases excluded).

    Example:
        >>> kernel_sparsity(prune_model(model, sparsity=0.5))   # doctest: +SKIP
        0.5
    """
    kernels = linear_kernels(model)
    total = sum(k.numel() for k in kernels)
    if total == 0:
        return 0.0
    zeros = sum(int((k == 0).sum()) for k in kernels)   # host sync: once per report
    return zeros / total


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(parameters, non-zero parameters)`` of ``model``, int8 linear layers included."""
    dyn = _dynamic_linear_class()
    total = nonzero = 0
    for m in model.modules():
        tensors: list[Tensor] = [p.detach() for p in m.parameters(recurse=False)]
        if dyn is not None and isinstance(m, dyn):
            tensors.append(m.weight().dequantize())
            if m.bias() is not None:
                tensors.append(m.bias().detach())
        for t in tensors:
            total += t.numel()
            nonzero += int(torch.count_nonzero(t))   # host sync: once per report
    return total, nonzero


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear)]


def prune_model(model: nn.Module, *, threshold: float | None = None,
                sparsity: float | None = None) -> nn.Module:
    """A copy of ``model`` with small linear-layer weights set to exactly zero (biases kept).

    * ``threshold=t``: every weight with |w| < t becomes 0 (the chapter's "zero tiny weights
      after training", best after l1 regularization).
    * ``sparsity=s``: global magnitude pruning — the fraction s of all linear weights with the
      smallest |w|, across layers (``torch.nn.utils.prune.global_unstructured`` with
      ``L1Unstructured``, rounding s·n to a whole count).

    The pruning masks are made permanent (``prune.remove``): the result is a plain module
    whose zeroed weights stay zero in every export.

    Args:
        model: any module with ``nn.Linear`` layers (not modified).
        threshold: magnitude below which weights are zeroed (≥ 0).
        sparsity: target fraction of zeroed linear weights, 0 ≤ s < 1.

    Example:
        >>> sparse = prune_model(model, sparsity=0.9)     # doctest: +SKIP
        >>> kernel_sparsity(sparse)                       # doctest: +SKIP
        0.9
    """
    if (threshold is None) == (sparsity is None):
        raise ConfigError("prune/sparsity", {"prune": threshold, "sparsity": sparsity},
                          "exactly one of a threshold (--prune) or a target sparsity "
                          "(--sparsity)")
    if threshold is not None and not (isinstance(threshold, (int, float)) and
                                      math.isfinite(threshold) and threshold >= 0):
        raise ConfigError("prune", threshold, "a weight magnitude ≥ 0, e.g. 0.01")
    if sparsity is not None and not (isinstance(sparsity, (int, float)) and
                                     0 <= sparsity < 1):
        raise ConfigError("sparsity", sparsity, "a fraction of weights to zero, 0 ≤ s < 1")
    pruned = copy.deepcopy(model)
    params = _prunable(pruned)
    if not params:
        raise TrainwellError(f"pruning needs linear layers; this {type(model).__name__} "
                             "has none")
    with torch.no_grad():
        if sparsity is not None:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured,
                                      amount=float(sparsity))
        else:
            for m, name in params:
                prune.custom_from_mask(m, name, mask=getattr(m, name).abs() >= threshold)
        for m, name in params:
            prune.remove(m, name)
    return pruned


class DeployedModel(nn.Module):
    """Takes float32 inputs, runs the network in its own precision, returns float32 logits.

    Exported artifacts wrap the network in this module so that a caller never has to know
    whether it computes in fp32, fp16, bf16 or int8.
    """

    def __init__(self, net: nn.Module, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.net = net
        self.compute_dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.to(self.compute_dtype)).float()


def _quantize_dynamic(model: nn.Module) -> nn.Module:
    try:
        with _quiet_quantization():
            from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        raise TrainwellError("precision int8 needs torch's dynamic quantization "
                             "(torch.ao.quantization.quantize_dynamic), missing from this "
                             f"torch {torch.__version__}; use fp16 or bf16") from exc
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        raise TrainwellError("precision int8: this torch build has no quantized CPU engine "
                             "(fbgemm/x86/qnnpack); use fp16 or bf16")
    with _quiet_quantization():
        return quantize_dynamic(model.float().cpu(), {nn.Linear}, dtype=torch.qint8)


def to_precision(model: nn.Module, precision: str = "fp32", *,
                 example: Tensor | None = None) -> nn.Module:
    """A copy of ``model`` (eval mode) computing in ``precision``.

    * ``fp32``: unchanged copy.
    * ``fp16`` / ``bf16``: every parameter and buffer cast to half / bfloat16 (2 bytes each).
    * ``int8``: dynamic quantization of the linear layers
      (``torch.ao.quantization.quantize_dynamic``): weights stored as int8 with one scale per
      tensor (symmetric, so a zero weight stays exactly zero); activations quantized on the
      fly per batch; everything else stays float32. CPU only.

    When ``example`` (float32 inputs) is given, one forward pass checks that every layer has
    a kernel for this precision on the model's device (e.g. some fp16 CPU ops are missing in
    older torch builds) and raises a :class:`ConfigError` naming the problem otherwise.

    Args:
        model: the network (not modified).
        precision: one of :data:`PRECISIONS`. Default ``"fp32"``.
        example: a small batch of float32 inputs for the check (optional).

    Example:
        >>> half = to_precision(model, "bf16")                      # doctest: +SKIP
        >>> DeployedModel(half, torch.bfloat16)(x).dtype            # doctest: +SKIP
        torch.float32
    """
    if precision not in PRECISIONS:
        raise ConfigError("precision", precision, list(PRECISIONS))
    net = copy.deepcopy(model).eval()
    if precision == "int8":
        net = _quantize_dynamic(net).eval()
    elif precision != "fp32":
        net = net.to(DTYPES[precision])
    if example is not None:
        try:
            with torch.inference_mode():
                out = DeployedModel(net, DTYPES[precision])(example)
        except (RuntimeError, NotImplementedError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError("precision", precision,
                              f"a precision every layer supports here ({first}); "
                              "try fp32, bf16 or int8") from exc
        if not torch.isfinite(out).all():
            raise ConfigError("precision", precision,
                              "a precision whose range holds this model's activations "
                              "(the outputs overflow to inf/NaN); try bf16 or fp32")
    return net
