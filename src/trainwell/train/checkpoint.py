"""Checkpoints as plain data, written atomically, self-verifying, loaded safely.

A checkpoint is a dict of tensors and primitives (see ``Trainer.state_dict``) that carries its
own integrity record: ``integrity.sha256`` is the sha256 of its content (every tensor's dtype,
shape and bytes, every value), checked on every load, so that a damaged file is detected even
where ``manifest.json`` is missing. Writing never leaves a half-written file where a good one
was: the new file goes to an exclusive temporary file in the same directory (see
:mod:`trainwell.atomic`), is fsynced, the current ``last.pt`` becomes ``last.prev.pt``, and the
temporary file is renamed to ``last.pt``; ``manifest.json`` (sha256, size, step and epoch of
each file) is then rewritten atomically. Loading uses ``torch.load(weights_only=True)``: a file
that would need arbitrary pickled objects (code) is refused with :class:`CheckpointError`; a
truncated, corrupt or non-finite (NaN/Inf weights) file falls back to the previous checkpoint
with a warning.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import trainwell.train.distributed as distributed
from trainwell.atomic import atomic_write, fsync_dir
from trainwell.data.download import sha256_of
from trainwell.errors import CheckpointError, CheckpointFallbackWarning, ConfigError
from trainwell.train.callbacks import Callback
from trainwell.train.history import _maximized

__all__ = ["ModelCheckpoint", "save_checkpoint", "load_checkpoint", "find_checkpoint",
           "content_sha256", "latest_checkpoint", "MANIFEST"]

MANIFEST = "manifest.json"
INTEGRITY = "integrity"


def _fsync_dir(directory: Path) -> None:  # kept for callers of the old name
    fsync_dir(directory)


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {
            "files": {}}
    except (OSError, ValueError):
        return {"files": {}}


def _feed(h: Any, obj: Any) -> None:
    """Hash ``obj`` canonically: the same content gives the same digest after a round trip."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            h.update(f"K{type(k).__name__}:{k!r}".encode())
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    else:  # None, bool, int, float (repr keeps nan/inf and every bit), str, bytes
        h.update(f"V{type(obj).__name__}:{obj!r}".encode())


def content_sha256(state: dict[str, Any]) -> str:
    """sha256 of a checkpoint's content (without its ``integrity`` record)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != INTEGRITY})
    return h.hexdigest()


def _non_finite(state: dict[str, Any]) -> str | None:
    """The first weight holding NaN/Inf (``model`` entries), else None."""
    weights = state.get("model")
    if not isinstance(weights, dict):
        return None
    for name, v in weights.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() \
                and not bool(torch.isfinite(v).all()):
            return str(name)
    return None


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike, *,
                    keep_previous: bool = True) -> Path:
    """Write ``state`` to ``path`` atomically and record it in the directory's manifest.

    The file carries ``integrity.sha256`` (:func:`content_sha256`), verified by every load.

    Args:
        state: plain data (tensors, numbers, strings, lists, dicts).
        path: the checkpoint file, e.g. ``run/checkpoints/last.pt``.
        keep_previous: move the existing file to ``<stem>.prev.pt`` first (default True).

    Raises:
        DiskFullError: no space for the file; nothing partial is left and the previous
            checkpoint is intact.
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v for k, v in state.items() if k != INTEGRITY}
    state[INTEGRITY] = {"sha256": content_sha256(state), "algorithm": "trainwell-content-v1"}
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    manifest = _read_manifest(directory)
    files = manifest["files"]
    prev = path.with_name(f"{path.stem}.prev{path.suffix}")

    def keep_current() -> None:  # the previous checkpoint stays until the new one is complete
        if keep_previous and path.exists():
            os.replace(path, prev)
            if path.name in files:
                files[prev.name] = files[path.name]

    atomic_write(path, blob, before_replace=keep_current)
    files[path.name] = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob),
                        "step": state.get("step"), "epoch": state.get("epoch")}
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=1))
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load one checkpoint file safely (``weights_only=True``) and verify it.

    Raises:
        CheckpointError: the file is missing, corrupt (its content does not match its own
            sha256), holds non-finite weights, or needs arbitrary pickled objects (which
            could run code) — the latter is refused, never loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "GLOBAL" in text or "Unsupported global" in text:  # a class or function to import
            raise CheckpointError(
                f"refusing to load {path}: it contains arbitrary Python objects that could "
                f"run code when unpickled; trainwell checkpoints hold only tensors and plain "
                f"values") from e
        raise CheckpointError(f"checkpoint {path} is corrupt: {e}") from e
    except Exception as e:  # truncated zip, bad magic number, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a trainwell checkpoint (a {type(state).__name__})")
    record = state.pop(INTEGRITY, None)
    if isinstance(record, dict) and record.get("sha256") != content_sha256(state):
        raise CheckpointError(f"checkpoint {path} is damaged: its content does not match the "
                              f"sha256 it was written with")
    bad = _non_finite(state)
    if bad is not None:
        raise CheckpointError(f"checkpoint {path} holds non-finite weights (NaN/Inf in {bad!r})")
    return state


class _Unsafe(CheckpointError):
    pass


def _load_verified(path: Path, known: set[str], map_location: Any) -> dict[str, Any]:
    if known and sha256_of(path) not in known:
        raise CheckpointError(f"{path.name}: sha256 does not match {MANIFEST} (incomplete write "
                              f"or corruption)")
    try:
        return load_checkpoint(path, map_location=map_location)
    except CheckpointError as e:
        if "refusing" in str(e):
            raise _Unsafe(str(e)) from e
        raise


def find_checkpoint(path: str | os.PathLike, *, name: str = "last.pt",
                    map_location: Any = "cpu") -> tuple[Path, dict[str, Any]]:
    """Resolve a checkpoint file or directory and load it, falling back when it is damaged.

    A directory is searched for ``name`` (default ``last.pt``), then ``<stem>.prev.pt``; each
    must match its own content sha256, a sha256 recorded in ``manifest.json`` (when there is
    one), hold finite weights, and load. A damaged candidate is skipped with a warning; an
    unsafe one (arbitrary pickled objects) is refused.

    Returns:
        ``(path_loaded, state)``.

    Raises:
        CheckpointError: nothing usable was found, or a file was unsafe.
    """
    p = Path(path)
    if p.is_file():
        p, name = p.parent, p.name  # verify against the manifest, fall back to <stem>.prev.pt
    if not p.is_dir():
        raise CheckpointError(f"checkpoint not found: {p}")
    known = {f.get("sha256") for f in _read_manifest(p)["files"].values() if isinstance(f, dict)}
    known.discard(None)
    stem = Path(name).stem
    candidates = [p / name, p / f"{stem}.prev.pt"]
    errors = []
    for c in candidates:
        if not c.is_file():
            continue
        try:
            state = _load_verified(c, known, map_location)
        except _Unsafe as e:
            raise CheckpointError(str(e)) from None
        except CheckpointError as e:
            errors.append(str(e))
            warnings.warn(f"skipping checkpoint {c}: {e}; falling back to the previous one",
                          CheckpointFallbackWarning, stacklevel=2)
            continue
        return c, state
    detail = "; ".join(errors) if errors else f"no {name} in {p}"
    raise CheckpointError(f"no usable checkpoint in {p}: {detail}")


def latest_checkpoint(directory: str | os.PathLike, name: str = "last.pt") -> dict[str, Any] | None:
    """``{"file", "step", "epoch"}`` of the checkpoint a resume would start from, as recorded
    in ``manifest.json`` (``None`` when there is none)."""
    directory = Path(directory)
    entry = _read_manifest(directory)["files"].get(name)
    if not isinstance(entry, dict) or not (directory / name).is_file():
        return None
    return {"file": f"{directory.name}/{name}", "step": entry.get("step"),
            "epoch": entry.get("epoch")}


class ModelCheckpoint(Callback):
    """Save resumable checkpoints: ``last.pt`` (+ ``last.prev.pt``) and ``best.pt``.

    Args:
        dir: the checkpoint directory (created if needed).
        every_epochs: write ``last.pt`` every N epochs (default 1; 0 = never at epoch ends).
        every_steps: also write it every N global steps, mid-epoch (default 0 = off).
        monitor: the log key that decides ``best.pt`` (default ``"val_loss"``, falling back to
            ``"loss"`` without validation data); ``None`` disables ``best.pt``.
        mode: ``"auto"`` (max for accuracy-like names), ``"min"`` or ``"max"``.

    A final ``last.pt`` is written at the end of ``fit`` and when training is interrupted
    (Ctrl-C), unless the run diverged: a diverged state is never saved, and no checkpoint is
    ever deleted, so the last good one is what ``--resume`` finds.

    Example:
        >>> # Trainer(model, callbacks=[ModelCheckpoint("run/checkpoints", every_steps=500)])
    """

    order = 100

    def __init__(self, dir: str | os.PathLike, every_epochs: int = 1, every_steps: int = 0,
                 monitor: str | None = "val_loss", mode: str = "auto"):
        for field, v in (("train.checkpoint_every_epochs", every_epochs),
                         ("train.checkpoint_every_steps", every_steps)):
            if not isinstance(v, int) or v < 0:
                raise ConfigError(field, v, "an integer >= 0 (0 = off)")
        self.dir = Path(dir)
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.monitor = monitor
        self.maximize = mode == "max" or (mode == "auto" and monitor is not None
                                          and _maximized(monitor))
        self.best: float | None = None
        self._saved_step = -1

    @property
    def last_path(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def save(self, t, name: str = "last.pt") -> Path | None:
        if t.status == "diverged":
            return None
        state = t.state_dict()  # under DDP every worker takes part (their random states)
        if name == "last.pt":
            self._saved_step = t.step
        if not distributed.is_main():  # only rank 0 writes files
            return None
        return save_checkpoint(state, self.dir / name, keep_previous=name == "last.pt")

    def on_batch_end(self, t, step):
        if self.every_steps and t.step % self.every_steps == 0:
            self.save(t)

    def on_epoch_end(self, t, epoch, logs):
        if self.monitor is not None:
            key = self.monitor
            if key not in logs and key.startswith("val_") and key[4:] in logs:
                key = key[4:]
            value = logs.get(key)
            if value is not None and value == value and (
                    self.best is None
                    or (value > self.best if self.maximize else value < self.best)):
                self.best = float(value)
                self.save(t, "best.pt")
        if self.every_epochs and epoch % self.every_epochs == 0 and self._saved_step != t.step:
            self.save(t)

    def on_fit_end(self, t):
        if self._saved_step != t.step:
            self.save(t)

    def on_exception(self, t, exc):
        # a second Ctrl-C/SIGTERM may have stopped mid-step; under DDP the other workers may
        # be gone: in both cases the last periodic checkpoint stays
        if isinstance(exc, KeyboardInterrupt) and t.status == "interrupted" \
                and not distributed.is_distributed() and not getattr(t, "_hard_interrupt", False):
            self.save(t)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state.get("best")
