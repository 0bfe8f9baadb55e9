"""Writing deployable artifacts and loading them back (to check and time them).

Formats:

* ``torchscript`` — ``model.torchscript.pt`` from ``torch.jit.trace``; load with
  ``torch.jit.load(path)``, no trainwell needed. torch 2.13 marks ``torch.jit`` deprecated
  (in favour of ``torch.export``) but it works, and it is the only format here that holds
  int8 dynamically quantized layers; the deprecation warnings are silenced.
* ``pt2`` — ``model.pt2``, a ``torch.export`` ExportedProgram with a dynamic batch size;
  load with ``torch.export.load(path).module()``. fp32/fp16/bf16.
* ``onnx`` — ``model.onnx`` (input ``input``, output ``logits``, dynamic batch) from
  ``torch.onnx.export``; checked with ``onnx.checker`` and run back with onnxruntime.
  Needs the ``onnx`` extra (onnx, onnxruntime, onnxscript). fp32/fp16.
* ``state`` — ``model.safetensors`` + ``model.json`` (:func:`trainwell.nn.save_model`),
  weights stored in the export precision; load with :func:`trainwell.nn.load_model`.
  fp32/fp16/bf16.

Every artifact except ``state`` takes float32 inputs and returns float32 logits whatever
its precision (:class:`~trainwell.export.transform.DeployedModel`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainwell.errors import CheckpointError, ConfigError, TrainwellError
from trainwell.export.transform import DTYPES, DeployedModel

__all__ = ["FORMATS", "FORMAT_PRECISIONS", "ARTIFACT_FILES", "check_format",
           "write_artifact", "load_artifact", "ONNX_INSTALL"]

FORMATS = ("torchscript", "pt2", "onnx", "state")
#: The precisions each format can hold.
FORMAT_PRECISIONS = {"torchscript": ("fp32", "fp16", "bf16", "int8"),
                     "pt2": ("fp32", "fp16", "bf16"),
                     "onnx": ("fp32", "fp16"),
                     "state": ("fp32", "fp16", "bf16")}
ARTIFACT_FILES = {"torchscript": ["model.torchscript.pt"], "pt2": ["model.pt2"],
                  "onnx": ["model.onnx"], "state": ["model.safetensors", "model.json"]}
ONNX_INSTALL = "pip install 'trainwell[onnx]'  (or: pip install onnx onnxruntime onnxscript)"

_WHY_NOT = {("pt2", "int8"): "torch.export cannot hold int8 dynamically quantized layers",
            ("onnx", "int8"): "torch's int8 dynamic quantization does not export to ONNX",
            ("onnx", "bf16"): "onnxruntime has no bfloat16 CPU kernels for linear layers",
            ("state", "int8"): "safetensors cannot store packed int8 layers"}


def check_format(format: str, precision: str) -> None:
    """Raise a :class:`ConfigError` when ``format`` is unknown or cannot hold ``precision``."""
    if format not in FORMATS:
        raise ConfigError("format", format, list(FORMATS))
    if precision not in FORMAT_PRECISIONS[format]:
        ok = [f for f in FORMATS if precision in FORMAT_PRECISIONS[f]]
        raise ConfigError("precision", precision,
                          f"a precision format {format} holds: "
                          f"{', '.join(FORMAT_PRECISIONS[format])} "
                          f"({_WHY_NOT.get((format, precision), '')}); "
                          f"precision {precision} exports as {', '.join(ok)}")


@contextlib.contextmanager
def _quiet():
    # torch.jit / torch.onnx print deprecation notes and progress lines a user cannot act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx.export's current exporter needs it)
    except ImportError as exc:
        raise TrainwellError(f"format onnx needs the packages onnx, onnxruntime and "
                             f"onnxscript ({exc.name} is missing): {ONNX_INSTALL}") from None
    return onnx, onnxruntime


def write_artifact(net: nn.Module, precision: str, format: str, folder: Path,
                   example: Tensor, *, extra: dict[str, Any] | None = None) -> list[Path]:
    """Write ``net`` (already transformed to ``precision``) into ``folder`` as ``format``.

    Args:
        net: the network in its export precision, eval mode.
        precision: its precision (for the float32 wrapper and the ``state`` metadata).
        format: one of :data:`FORMATS`.
        folder: an existing folder; the files of :data:`ARTIFACT_FILES` are created there.
        example: float32 inputs (≥ 2 rows) used to trace/export.
        extra: metadata stored with a ``state`` export (``model.json``'s ``extra``).

    Returns:
        The written files.
    """
    check_format(format, precision)
    deployed = DeployedModel(net, DTYPES[precision]).eval()
    paths = [folder / name for name in ARTIFACT_FILES[format]]
    if format == "torchscript":
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(deployed, example, check_trace=False)
            torch.jit.save(traced, str(paths[0]))
    elif format == "pt2":
        batch = torch.export.Dim("batch", min=1)
        with _quiet():
            program = torch.export.export(deployed, (example,),
                                          dynamic_shapes=({0: batch},))
            torch.export.save(program, str(paths[0]))
    elif format == "onnx":
        _onnx_modules()
        batch = torch.export.Dim("batch", min=1)
        with _quiet():
            torch.onnx.export(deployed, (example,), str(paths[0]), input_names=["input"],
                              output_names=["logits"], dynamic_shapes=({0: batch},),
                              dynamo=True, verbose=False,
                              external_data=False)   # one self-contained file
    else:
        from trainwell.nn import save_model

        save_model(net, folder, extra={**(extra or {}), "precision": precision})
    # every file the exporter wrote (an exporter may add side files, e.g. external data)
    written = sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("model"))
    return [*paths, *(p for p in written if p not in paths)]


def load_artifact(folder: Path, format: str, precision: str = "fp32", *,
                  template: nn.Module | None = None) -> Callable[[Tensor], Tensor]:
    """The artifact in ``folder`` loaded back as a function float32 inputs → float32 logits.

    Args:
        folder: where :func:`write_artifact` wrote it.
        format: its format.
        precision: its precision (``state`` artifacts are cast back to it after loading).
        template: for a ``state`` artifact of a model not made by the builder, a module of the
            same architecture to load the weights into.
    """
    if format not in FORMATS:
        raise ConfigError("format", format, list(FORMATS))
    path = folder / ARTIFACT_FILES[format][0]
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: no {format} artifact in {folder}")
    if format == "torchscript":
        with _quiet():
            module = torch.jit.load(str(path), map_location="cpu").eval()
        return module
    if format == "pt2":
        with _quiet():
            return torch.export.load(str(path)).module()
    if format == "onnx":
        onnx, ort = _onnx_modules()
        onnx.checker.check_model(str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: Tensor) -> Tensor:
            x = x.detach().to("cpu", torch.float32).contiguous()   # host sync: onnxruntime
            return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

        return run
    from trainwell.nn import load_model, load_model_info, load_weights

    info = load_model_info(folder)
    if isinstance(info.get("trainwell_config"), dict):
        net = load_model(folder)
    elif template is not None:
        import copy

        net = load_weights(copy.deepcopy(template).float(), folder).eval()
    else:
        raise CheckpointError(f"{folder} holds a model not made by the builder; pass a "
                              "template module to load its weights into")
    return DeployedModel(net.to(DTYPES[precision]), DTYPES[precision]).eval()
