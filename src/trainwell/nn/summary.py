"""A Keras-like model summary for any ``nn.Module``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Summary", "SummaryRow", "model_summary"]


@dataclass
class SummaryRow:
    """One layer: dotted name, class name, output shape (``None`` = batch), parameter counts."""

    name: str
    type: str
    output_shape: str
    params: int
    trainable_params: int

    @property
    def trainable(self) -> bool:
        """True when every parameter of the layer is trainable (or it has none)."""
        return self.trainable_params == self.params


@dataclass
class Summary:
    """Rows of :func:`model_summary` and the totals; ``str()`` is the table."""

    rows: list[SummaryRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    input_shape: tuple[int, ...] = ()

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for summary.json and reports)."""
        return {"input_shape": list(self.input_shape),
                "rows": [asdict(r) | {"trainable": r.trainable} for r in self.rows],
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "non_trainable_params": self.non_trainable_params}

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params", "Trainable")
        body = [(r.name, r.type, r.output_shape, f"{r.params:,}",
                 "" if r.params == 0 else "yes" if r.trainable
                 else "no" if r.trainable_params == 0 else "partly")
                for r in self.rows]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=False)]
        numeric = {3}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        rule = "─" * len(line(header))
        out = [line(header), rule, *(line(b) for b in body), rule,
               f"Total params: {self.total_params:,}",
               f"Trainable params: {self.trainable_params:,}",
               f"Non-trainable params: {self.non_trainable_params:,}"]
        return "\n".join(out)


def _shape_of(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return str(("None", *out.shape[1:])).replace("'", "")
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape_of(o) for o in out) + "]"
    return "?"


def model_summary(model: nn.Module, input_shape: int | Sequence[int]) -> Summary:
    """Each layer's output shape and parameter counts, like Keras ``model.summary()``.

    Runs one forward pass on a dummy batch of 2 zeros (the model's dtype and device) in eval
    mode under ``no_grad`` — batch norm statistics are not touched and every module's mode is
    restored. Rows are the leaf modules (and any module owning parameters directly), with
    dotted names; frozen parameters (``requires_grad=False``) count as non-trainable. Batch
    norm running statistics are buffers, not parameters, and are not counted.

    Args:
        model: any ``nn.Module`` taking one tensor.
        input_shape: shape of one sample, without the batch dimension.

    Example:
        >>> print(model_summary(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,)))  # doctest: +SKIP
    """
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    shapes: dict[str, str] = {}
    rows_modules = [(name or type(m).__name__, m) for name, m in model.named_modules()
                    if not any(True for _ in m.children())
                    or (name and any(True for _ in m.parameters(recurse=False)))]

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            shapes[name] = _shape_of(output)
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in rows_modules]
    modes = [(m, m.training) for m in model.modules()]
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((2, *shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode

    rows = []
    for name, m in rows_modules:
        params = list(m.parameters(recurse=False))
        rows.append(SummaryRow(name, type(m).__name__, shapes.get(name, "?"),
                               sum(p.numel() for p in params),
                               sum(p.numel() for p in params if p.requires_grad)))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(rows, total, trainable, shape)
