"""Ship a trained model small and fast: BN folding, pruning, reduced precision, export.

The chapter's low-latency guideline in one call: :func:`export_model` folds batch norm into
the linear layers, zeros small weights, reduces precision (fp16, bf16, int8), writes a
TorchScript / torch.export / ONNX / safetensors artifact into a new folder of the run, and
measures what each choice cost and gained (accuracy, size, latency) against the original.

Example:
    >>> from trainwell.export import export_model
    >>> res = export_model("runs/20250101-120000-low_latency", fold_bn=True, sparsity=0.5,
    ...                    precision="int8")                                # doctest: +SKIP
    >>> for row in res.table: print(row)                                    # doctest: +SKIP
"""

from trainwell.export.api import LARGE_BATCH, ExportResult, export_model
from trainwell.export.formats import (
    ARTIFACT_FILES,
    FORMAT_PRECISIONS,
    FORMATS,
    ONNX_INSTALL,
    check_format,
    load_artifact,
    write_artifact,
)
from trainwell.export.measure import (
    compare_latency,
    measure_latency,
    paired_ratio,
    score,
    time_rounds,
)
from trainwell.export.transform import (
    DTYPES,
    PRECISIONS,
    DeployedModel,
    count_parameters,
    kernel_sparsity,
    linear_kernels,
    prune_model,
    to_precision,
)

__all__ = [
    "export_model", "ExportResult", "LARGE_BATCH",
    "FORMATS", "FORMAT_PRECISIONS", "ARTIFACT_FILES", "ONNX_INSTALL", "check_format",
    "write_artifact", "load_artifact",
    "PRECISIONS", "DTYPES", "prune_model", "kernel_sparsity", "count_parameters",
    "linear_kernels",
    "to_precision", "DeployedModel",
    "measure_latency", "compare_latency", "time_rounds", "paired_ratio", "score",
]
