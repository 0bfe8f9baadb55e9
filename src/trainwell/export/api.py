"""``export_model``: a trained run (or model) → a deployable artifact and what each step cost."""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainwell.atomic import atomic_write
from trainwell.data.download import sha256_of
from trainwell.errors import ConfigError, DataError, TrainwellError
from trainwell.export.formats import (
    ARTIFACT_FILES,
    check_format,
    load_artifact,
    write_artifact,
)
from trainwell.export.measure import (
    compressed_size,
    file_size,
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
    prune_model,
    to_precision,
)

__all__ = ["ExportResult", "export_model", "LARGE_BATCH"]

#: The "large batch" of the latency measurement.
LARGE_BATCH = 1024
MANIFEST = "export.json"


@dataclass
class ExportResult:
    """What :func:`export_model` returns.

    Attributes:
        folder: the new export folder (``<run>/export/<timestamp>-<name>/``).
        files: the artifact files in it (plus ``export.json``, the manifest).
        format, precision: as requested.
        options: every option, as written to the manifest.
        table: rows of cells, header first: quantity, original, exported, change.
        original, exported: the measured numbers (accuracy, loss, parameters, non-zeros,
            sparsity, bytes, compressed bytes, latency per batch in seconds).
        model: the exported network in memory (eval mode, in its precision).
        max_abs_diff: largest |logit difference| between the artifact read back from disk
            and ``model`` (the check that the artifact is what was measured).
        text: the notes shown under the table in the run report.
        artifact: the artifact read back from disk (float32 inputs → float32 logits).
        warnings: problems worth a look, e.g. reloaded data that no longer reproduce the
            run's recorded validation accuracy.
    """

    folder: Path
    files: list[Path]
    format: str
    precision: str
    options: dict[str, Any]
    table: list[list[str]]
    original: dict[str, float]
    exported: dict[str, float]
    model: nn.Module
    max_abs_diff: float
    text: str = ""
    artifact: Any = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers
def _validate(fold_bn: bool, prune: float | None, sparsity: float | None, precision: str,
              format: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError("precision", precision, list(PRECISIONS))
    check_format(format, precision)
    if prune is not None and sparsity is not None:
        raise ConfigError("prune/sparsity", f"--prune {prune} and --sparsity {sparsity}",
                          "one way of pruning: a magnitude threshold (--prune) or a target "
                          "sparsity (--sparsity), not both")
    if prune is not None and not (isinstance(prune, (int, float)) and math.isfinite(prune)
                                  and prune >= 0):
        raise ConfigError("prune", prune, "a weight magnitude ≥ 0, e.g. 0.01")
    if sparsity is not None and not (isinstance(sparsity, (int, float)) and 0 <= sparsity < 1):
        raise ConfigError("sparsity", sparsity, "a fraction of weights to zero, 0 ≤ s < 1, "
                          "e.g. 0.5")


def _example(model: nn.Module, splits: Any) -> Tensor:
    for part in ("val", "test", "train"):
        x = getattr(splits, f"x_{part}", None) if splits is not None else None
        if x is not None and len(x) >= 2:
            return x[:8].float().cpu()
    config = getattr(model, "trainwell_config", None) or {}
    shape = config.get("input_shape")
    if shape is None:
        raise DataError("export needs example inputs: pass example_input=x[:8] (or splits "
                        "with data), or a model made by build_model (which records its "
                        "input_shape)")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randn(8, *shape, generator=torch.Generator().manual_seed(0))


def _given_example(model: nn.Module, example_input: Any) -> Tensor:
    try:
        x = torch.as_tensor(example_input).float().cpu()
    except Exception as e:
        raise DataError(f"example_input: cannot be turned into a tensor ({e})") from e
    if x.dim() < 2 or len(x) < 1:
        raise DataError(f"example_input: a batch of inputs (batch first) is needed; received "
                        f"shape {tuple(x.shape)}")
    if len(x) < 2:  # tracing with one row can specialize the batch size
        x = x.repeat(2, *([1] * (x.dim() - 1)))
    try:
        with torch.no_grad():
            model(x[:2])
    except Exception as e:
        raise DataError(f"example_input: inputs of shape {tuple(x.shape[1:])} do not fit the "
                        f"model ({type(e).__name__}: {e})") from e
    return x[:8]


def _inputs(example: Tensor, splits: Any, rows: int) -> Tensor:
    """``rows`` inputs for timing: real examples (cycled) when there are any."""
    pool = example
    for part in ("test", "val", "train"):
        x = getattr(splits, f"x_{part}", None) if splits is not None else None
        if x is not None and len(x) > 0:
            pool = x
            break
    idx = torch.arange(rows) % len(pool)
    return pool[idx].float().cpu().contiguous()


def _default_name(fold_bn: bool, prune: float | None, sparsity: float | None,
                  precision: str, format: str) -> str:
    parts = [precision]
    if fold_bn:
        parts.append("fold")
    if sparsity is not None:
        parts.append(f"sparsity{sparsity:g}")
    if prune is not None:
        parts.append(f"prune{prune:g}")
    parts.append(format)
    return "-".join(parts)


def _bytes(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def _seconds(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s"


def _ratio(a: float, b: float) -> str:
    return f"×{b / a:.2f}" if a > 0 else "n/a"


def _table(original: dict[str, float], exported: dict[str, float],
           metric_keys: list[str], large: int) -> list[list[str]]:
    rows = [["", "original", "exported", "change"]]
    for key in metric_keys:
        a, b = original[key], exported[key]
        if key.endswith("accuracy"):
            rows.append([key.replace("_", " "), f"{a:.4f}", f"{b:.4f}",
                         f"{100 * (b - a):+.2f} pts"])
        else:
            d = b - a if abs(b - a) >= 5e-5 else 0.0   # no "-0.0000"
            rows.append([key.replace("_", " "), f"{a:.4f}", f"{b:.4f}", f"{d:+.4f}"])
    a, b = original["parameters"], exported["parameters"]
    rows.append(["parameters", f"{a:,.0f}", f"{b:,.0f}", _ratio(a, b)])
    a, b = original["nonzero"], exported["nonzero"]
    rows.append(["non-zero parameters", f"{a:,.0f}", f"{b:,.0f}", _ratio(a, b)])
    a, b = original["sparsity"], exported["sparsity"]
    rows.append(["linear-weight sparsity", f"{100 * a:.1f}%", f"{100 * b:.1f}%",
                 f"{100 * (b - a):+.1f} pts"])
    for key, label in (("bytes", "file size"), ("compressed_bytes", "compressed size")):
        a, b = original[key], exported[key]
        rows.append([label, _bytes(a), _bytes(b), _ratio(a, b)])
    for key, label in (("latency_1", "latency, batch 1"),
                       ("latency_large", f"latency, batch {large}")):
        a, b = original[key], exported[key]
        ratio = exported.get(f"{key}_ratio")
        rows.append([label, _seconds(a), _seconds(b),
                     f"×{ratio:.2f}" if ratio is not None else _ratio(a, b)])
    return rows


# --------------------------------------------------------------------------- export
def export_model(run_or_model: str | os.PathLike | nn.Module, *, fold_bn: bool = False,
                 prune: float | None = None, sparsity: float | None = None,
                 precision: str = "fp32", format: str = "torchscript",
                 out: str | os.PathLike | None = None, name: str | None = None,
                 splits: Any = None, task: str | None = None, large_batch: int = LARGE_BATCH,
                 timing_repeats: int = 15, threads: int | None = None,
                 update_report: bool = True, example_input: Any = None) -> ExportResult:
    """Turn a trained run (or model) into a deployable artifact and measure what changed.

    Steps, in this order (each optional): fold batch norm into the linear layers
    (:func:`trainwell.nn.fold_batch_norm`, exact in eval mode); prune (zero every linear
    weight with |w| < ``prune``, or the fraction ``sparsity`` of smallest-magnitude linear
    weights across layers; :func:`~trainwell.export.prune_model`); reduce precision
    (:func:`~trainwell.export.to_precision`: fp16/bf16 casts, int8 dynamic quantization of
    the linear layers); write the artifact in ``format`` (see
    :mod:`trainwell.export.formats`) into a new folder ``<out>/<timestamp>-<name>/`` (never
    an existing one), next to ``export.json`` (options, sha256, table, input shape and the
    preprocessing statistics the model expects).

    The artifact is then read back from disk, checked against the in-memory model, and
    compared with the *original* — the same model written in the same format at fp32 with no
    folding or pruning, so every ratio shows what the optimizations changed: validation and
    test accuracy and loss (on the run's data, reloaded through its recipe), parameters and
    non-zeros, linear-weight sparsity, file size (and zlib-compressed size, where zeros
    pay off), and latency per batch for batch 1 and ``large_batch`` (median of
    ``timing_repeats`` interleaved timed blocks after warm-up, on this machine's CPU; the
    change is the median of the per-round ratios, robust to a machine whose load varies).

    For a run directory the table is also added to ``summary.json`` as the section
    "Export <folder name>" and ``report.html`` is rebuilt.

    Args:
        run_or_model: a run directory written by ``trainwell fit``, or a module.
        fold_bn: fold batch norm (builder models only). Default False.
        prune: magnitude threshold (≥ 0); exclusive with ``sparsity``.
        sparsity: target fraction of zero linear weights, 0 ≤ s < 1.
        precision: ``"fp32"`` (default), ``"fp16"``, ``"bf16"`` or ``"int8"``.
        format: ``"torchscript"`` (default; every precision), ``"pt2"`` (torch.export),
            ``"onnx"`` (needs the ``onnx`` extra) or ``"state"`` (safetensors + model.json).
        out: the folder in which the export folder is created; default ``<run>/export``
            (``./exports`` for a module).
        name: the export folder's name after the timestamp; default from the options, e.g.
            ``int8-fold-sparsity0.5-torchscript``.
        splits: data to score on (default: the run's data, reloaded through its recipe).
            Without data (a module and no splits) accuracy rows are left out.
        task: the task of the logits (default: the run's, or the model's builder config).
        large_batch: rows of the large latency batch. Default 1024.
        timing_repeats: timed rounds per latency. Default 15.
        threads: CPU threads for the latency timings (``torch.set_num_threads``, restored
            afterwards); default: torch's current setting. On a busy machine 1 thread gives
            far steadier numbers.
        update_report: add the section and rebuild report.html of a run (default True).
        example_input: a batch of inputs (tensor or array, batch first) to trace, check and
            time the model with — what a module built by hand needs when there is no data
            (default: the run's data, else random inputs of the builder's input shape).

    Returns:
        :class:`ExportResult` (folder, files, table, numbers, model).

    Raises:
        ConfigError: bad precision/format/sparsity/threshold, both pruning modes, a
            precision the format cannot hold, or a precision a layer has no kernel for.
        CheckpointError: a run without a saved model (the missing file is named).
        TrainwellError: the onnx extra is missing, or the artifact read back from disk does
            not reproduce the model.

    Example:
        >>> res = export_model("runs/20250101-120000-low_latency", fold_bn=True,
        ...                    sparsity=0.5, precision="int8")          # doctest: +SKIP
        >>> res.folder / "model.torchscript.pt"                         # doctest: +SKIP
    """
    _validate(fold_bn, prune, sparsity, precision, format)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError("threads", threads, "a number of CPU threads ≥ 1")
    if not isinstance(large_batch, int) or large_batch < 2:
        raise ConfigError("large_batch", large_batch, "a batch size ≥ 2")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ConfigError("--out", str(out), "a folder to create the export folder in (that "
                          "path is a file)")
    run_dir: Path | None = None
    extra: dict[str, Any] = {}
    if isinstance(run_or_model, nn.Module):
        model = run_or_model
        extra = dict(getattr(model, "trainwell_extra", None) or {})
    else:
        from trainwell.workflows.run import load_run

        loaded = load_run(run_or_model)
        run_dir, model = loaded.run_dir, loaded.model
        extra = dict((loaded.model_info or {}).get("extra") or {})
        task = task or loaded.task
        if splits is None:
            splits = loaded.splits_loader()
    config = getattr(model, "trainwell_config", None) or {}
    task = task or extra.get("task") or config.get("task") or "multiclass"

    # a private fp32 CPU copy: the caller's model keeps its device, dtype and mode
    original = copy.deepcopy(model).float().cpu().eval()
    example = _example(original, splits) if example_input is None else _given_example(
        original, example_input)

    # fold → prune → precision: pruning and rounding act on the weights actually deployed.
    net = original
    if fold_bn:
        from trainwell.nn import fold_batch_norm

        net = fold_batch_norm(net)
    if prune is not None or sparsity is not None:
        net = prune_model(net, threshold=prune, sparsity=sparsity)
    net = to_precision(net, precision, example=example)

    from trainwell.report.rundir import new_run_dir

    root = Path(out) if out is not None else (run_dir / "export" if run_dir else Path("exports"))
    folder = new_run_dir(root, name or _default_name(fold_bn, prune, sparsity, precision,
                                                     format))
    meta = {k: v for k, v in extra.items() if k in ("task", "class_names", "data", "recipe")}
    try:
        files = write_artifact(net, precision, format, folder, example, extra=meta)
        artifact = load_artifact(folder, format, precision, template=net)
    except BaseException:
        # a failed export leaves no half-written folder behind
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
        raise

    with torch.inference_mode():
        reference = DeployedModel(net, DTYPES[precision])(example)
        max_diff = float((artifact(example).float() - reference).abs().max())  # host sync
    tol = {"fp32": 1e-4, "int8": 1e-3}.get(precision, 2e-2) * (1 + float(reference.abs().max()))
    if not max_diff <= tol:
        raise TrainwellError(f"the {format} artifact in {folder} does not reproduce the model: "
                             f"outputs differ by {max_diff:.3g} (tolerance {tol:.3g})")

    with tempfile.TemporaryDirectory(prefix="trainwell-export-") as tmp:
        base_files = write_artifact(original, "fp32", format, Path(tmp), example, extra=meta)
        baseline = load_artifact(Path(tmp), format, "fp32", template=original)
        previous_threads = torch.get_num_threads()
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            n_threads = torch.get_num_threads()
            numbers = _measure(original, net, baseline, artifact, base_files, files, splits,
                               task, example, large_batch, timing_repeats)
        finally:
            torch.set_num_threads(previous_threads)
    orig_n, exp_n, metric_keys = numbers

    table = _table(orig_n, exp_n, metric_keys, large_batch)
    options = {"fold_bn": bool(fold_bn), "prune": prune, "sparsity": sparsity,
               "precision": precision, "format": format}
    steps = []
    if fold_bn:
        steps.append("batch norm folded into the linear layers")
    if sparsity is not None:
        steps.append(f"global L1 magnitude pruning to sparsity {sparsity:g}")
    if prune is not None:
        steps.append(f"linear weights with |w| < {prune:g} zeroed")
    steps.append({"fp32": "float32", "fp16": "float16 weights and activations",
                  "bf16": "bfloat16 weights and activations",
                  "int8": "int8 dynamic quantization of the linear layers"}[precision])
    text = (f"{'; '.join(steps)}; {format} artifact {folder.name}/"
            f"{ARTIFACT_FILES[format][0]}. Original = the same model in the same format at "
            f"fp32 without folding or pruning. Latency on this machine's CPU (torch threads: "
            f"{n_threads}): median of timed blocks after warm-up; its change is the median of "
            "the per-round ratios (both models timed back to back). The artifact read back from "
            f"disk reproduces the exported model's logits (largest difference {max_diff:.2g}).")
    warnings = _data_warnings(run_dir, orig_n)
    if warnings:
        text += " Warning: " + " ".join(warnings)
    input_shape = config.get("input_shape") or list(example.shape[1:])
    manifest = {
        "format": format, "precision": precision, "options": options,
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)} for p in files},
        "input": {"shape": ["batch", *([input_shape] if isinstance(input_shape, int)
                                       else list(input_shape))],
                  "dtype": "float32", "preprocessing": extra.get("data")},
        "output": "logits (float32)", "task": task, "class_names": extra.get("class_names"),
        "source": str(run_dir) if run_dir else None, "torch_version": torch.__version__,
        "torch_threads": n_threads, "original": orig_n, "exported": exp_n,
        "max_abs_diff": max_diff, "table": table, "notes": text, "warnings": warnings,
    }
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2, default=str))
    if run_dir is not None and update_report:
        from trainwell.report.rundir import add_summary_section, write_report

        add_summary_section(run_dir, f"Export {folder.name}", table, text)
        write_report(run_dir)
    return ExportResult(folder, [*files, folder / MANIFEST], format, precision, options, table,
                        orig_n, exp_n, net, max_diff, text, artifact, warnings)


def _data_warnings(run_dir: Path | None, original: dict[str, float]) -> list[str]:
    """The reloaded data should reproduce the accuracy the run recorded when it finished."""
    if run_dir is None:
        return []
    from trainwell.report.rundir import read_summary

    final = (read_summary(run_dir).get("metrics") or {}).get("final") or {}
    out = []
    for part in ("val", "test"):
        key = f"{part}_accuracy"
        recorded, now = final.get(key), original.get(key)
        if isinstance(recorded, (int, float)) and now is not None and abs(recorded - now) > 1e-3:
            out.append(f"the original model scores {part} accuracy {now:.4f} on the reloaded "
                       f"data but the run recorded {recorded:.4f}: the data now come from "
                       "another source or changed (a different validation split?).")
    return out


def _measure(original: nn.Module, net: nn.Module, baseline: Any, artifact: Any,
             base_files: list[Path], files: list[Path], splits: Any, task: str,
             example: Tensor, large: int, repeats: int
             ) -> tuple[dict[str, float], dict[str, float], list[str]]:
    orig: dict[str, float] = {}
    exp: dict[str, float] = {}
    keys: list[str] = []
    for part in ("val", "test"):
        x = getattr(splits, f"x_{part}", None) if splits is not None else None
        y = getattr(splits, f"y_{part}", None) if splits is not None else None
        if x is None or y is None or len(x) == 0:
            continue
        a, b = score(baseline, x.float().cpu(), y.cpu(), task), score(artifact, x.float().cpu(),
                                                                       y.cpu(), task)
        for k in ("accuracy", "loss", "mae"):
            if k in a:
                keys.append(f"{part}_{k}")
                orig[f"{part}_{k}"], exp[f"{part}_{k}"] = a[k], b[k]
    (orig["parameters"], orig["nonzero"]), (exp["parameters"], exp["nonzero"]) = \
        count_parameters(original), count_parameters(net)
    orig["sparsity"], exp["sparsity"] = kernel_sparsity(original), kernel_sparsity(net)
    orig["bytes"], exp["bytes"] = file_size(base_files), file_size(files)
    orig["compressed_bytes"], exp["compressed_bytes"] = (compressed_size(base_files),
                                                         compressed_size(files))
    for key, rows in (("latency_1", 1), ("latency_large", large)):
        x = _inputs(example, splits, rows)
        base_t, exp_t = time_rounds([baseline, artifact], x, repeats=repeats)
        orig[key], exp[key] = statistics.median(base_t), statistics.median(exp_t)
        exp[f"{key}_ratio"] = paired_ratio(base_t, exp_t)
    return orig, exp, keys
