"""Saving and loading models: ``model.safetensors`` (weights) + ``model.json`` (how to rebuild).

``model.json`` holds ``trainwell_config`` (the :func:`~trainwell.nn.build_model` arguments; for
your own module, its factory and arguments, see :mod:`trainwell.nn.factory`; ``null`` for a
module built by hand without one), ``extra`` (anything the caller adds: task, class names,
standardization statistics, …), the module class and the trainwell and torch versions.
Files are written to a temporary name and renamed, so a crash never leaves half a model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from trainwell.atomic import atomic_write
from trainwell.errors import CheckpointError, ConfigError

__all__ = ["save_model", "load_model", "load_weights", "load_model_info", "clone_model",
           "WEIGHTS_FILE", "INFO_FILE"]

WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
FORMAT = "trainwell-model"
FORMAT_VERSION = 1


def _unwrap(model: nn.Module) -> nn.Module:
    # torch.compile wraps the module and prefixes keys with "_orig_mod."; save the original.
    return getattr(model, "_orig_mod", model)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()   # host sync: once, when saving
    if hasattr(obj, "tolist"):               # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")




def save_model(model: nn.Module, dir: str | os.PathLike, extra: dict[str, Any] | None = None,
               *, factory: str | None = None, factory_args: dict[str, Any] | None = None
               ) -> Path:
    """Write ``dir/model.safetensors`` and ``dir/model.json``; return ``dir``.

    Args:
        model: any module; a builder model also records its ``trainwell_config`` so that
            :func:`load_model` can rebuild it.
        dir: the folder (created if needed; the two files are replaced).
        extra: JSON-serializable data to keep with the model (tensors and numpy arrays are
            stored as lists), e.g. ``{"task": "multiclass", "class_names": [...]}``.
        factory: for a module you built: ``"package.module:function"`` (importable) or
            ``"file.py:function"``, a function that builds it again from ``factory_args``
            (recorded in ``model.json``'s ``trainwell_config``, the record a recipe's
            ``[model] module`` writes too, so :func:`load_model` can rebuild it).
        factory_args: the factory's keyword arguments (JSON-serializable).

    Example:
        >>> save_model(model, "runs/x/model", extra={"task": "multiclass"})  # doctest: +SKIP
    """
    from trainwell import __version__

    model = _unwrap(model)
    built_by = _check_factory(model, factory, factory_args) if factory is not None else None
    config = built_by or getattr(model, "trainwell_config", None)
    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Host copies, contiguous and unshared (safetensors refuses tensors sharing storage).
    state = {k: v.detach().to("cpu", copy=True).contiguous()
             for k, v in model.state_dict().items()}
    info = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "trainwell_version": __version__, "torch_version": torch.__version__,
            "module_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "trainwell_config": config, "extra": extra or {}}
    blob = save(state, metadata={"format": FORMAT})
    # the digest of the weights goes into model.json: loading verifies it
    info["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    text = json.dumps(info, indent=2, default=_jsonable, ensure_ascii=False)
    atomic_write(folder / WEIGHTS_FILE, blob)
    atomic_write(folder / INFO_FILE, text)
    return folder


def load_model_info(dir: str | os.PathLike) -> dict[str, Any]:
    """The contents of ``dir/model.json`` (``trainwell_config``, ``extra``, versions)."""
    folder = Path(dir)
    path = folder / INFO_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a saved trainwell model: {INFO_FILE} is missing "
                              f"(save_model writes {INFO_FILE} and {WEIGHTS_FILE})")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a trainwell model description "
                              f"(expected \"format\": \"{FORMAT}\")")
    return info


def _read_weights(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: no weights to load")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {exc}") from exc
    expected = _recorded_sha256(path.parent / INFO_FILE) if path.name == WEIGHTS_FILE else None
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(f"{path} is damaged: its sha256 does not match the one recorded "
                              f"in {INFO_FILE} when the model was saved")
    try:
        state = load(blob)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    for name, v in state.items():
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"{path} holds non-finite weights (NaN/Inf in {name!r}); "
                                  f"it cannot give results")
    return {k: v.to(device) for k, v in state.items()}


def _recorded_sha256(info_path: Path) -> str | None:
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    digest = info.get("weights_sha256") if isinstance(info, dict) else None
    return digest if isinstance(digest, str) else None


def load_weights(model: nn.Module, dir: str | os.PathLike, *, strict: bool = True,
                 device: str | torch.device = "cpu") -> nn.Module:
    """Load ``dir/model.safetensors`` (or a ``.safetensors`` file) into ``model``; return it.

    Args:
        model: any module with the same parameter names and shapes.
        dir: the folder written by :func:`save_model`, or the weights file itself.
        strict: every key must match (default ``True``).
        device: where tensors are read to before being copied into the model.

    Raises:
        CheckpointError: missing/corrupt file, or names/shapes that do not fit the model.
    """
    state = _read_weights(Path(dir), device)
    try:
        _unwrap(model).load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in {dir} do not fit this model: {exc}") from exc
    return model


def load_model(dir: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a :func:`~trainwell.nn.build_model` model saved by :func:`save_model`.

    The returned module is in eval mode, on ``device``, and carries ``trainwell_config`` and
    ``trainwell_extra`` (the ``extra`` given to :func:`save_model`).

    Raises:
        CheckpointError: no ``model.json``, a model not made by the builder (use
            :func:`load_weights` on a module you build), or weights that do not fit.

    Example:
        >>> model = load_model("runs/x/model")  # doctest: +SKIP
    """
    import warnings

    from trainwell.nn.builder import SelfNormalizationWarning, build_model
    from trainwell.nn.factory import rebuild_from_config

    info = load_model_info(dir)
    config = info.get("trainwell_config")
    if not isinstance(config, dict) and isinstance(info.get("factory"), dict):
        # written by an earlier trainwell: the same factory record under another name
        built = info["factory"]
        config = {"kind": "module", "module": built.get("ref"), "args": built.get("args") or {}}
    if not isinstance(config, dict):
        raise CheckpointError(f"{dir} holds a {info.get('module_class', 'custom')} not built by "
                              "trainwell's builder; save it with save_model(model, dir, "
                              "factory='package.module:function', factory_args={...}), or "
                              "build it yourself and call load_weights(model, dir)")
    try:
        with warnings.catch_warnings():
            # the advice was given when the model was built; loading it is not the time
            warnings.simplefilter("ignore", SelfNormalizationWarning)
            if config.get("kind") == "module":   # your factory: either spelling
                model = rebuild_from_config(config)
            else:
                model = build_model(**config)
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"the model description in {dir} cannot be rebuilt by this "
                              f"trainwell version: {exc}") from exc
    load_weights(model, dir, device=device)
    model.trainwell_extra = info.get("extra") or {}
    return model.to(device).eval()


def _check_factory(model: nn.Module, ref: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """Refuse, before writing anything, a factory that would not rebuild this very module;
    return the record ``model.json`` keeps of it."""
    from trainwell.nn.factory import absolute_factory_spec, build_from_factory

    args = dict(args or {}) if isinstance(args, dict) or args is None else args
    try:
        json.dumps(args, default=_jsonable)
    except TypeError as exc:
        raise ConfigError("factory_args", args, f"JSON-serializable arguments ({exc})") from exc
    twin = build_from_factory(absolute_factory_spec(ref), args=args, field="factory",
                              args_field="factory_args")
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    if mine != theirs:
        raise ConfigError("factory", ref, f"a factory whose module has this model's parameters "
                          f"(names and shapes differ with factory_args={args})")
    return twin.trainwell_config


def clone_model(model: nn.Module) -> nn.Module:
    """An independent deep copy of ``model`` with the same weights, modes and attributes.

    Example:
        >>> twin = clone_model(model)  # doctest: +SKIP
        >>> twin is not model and twin[0].weight is not model[0].weight  # doctest: +SKIP
        True
    """
    return copy.deepcopy(_unwrap(model))
