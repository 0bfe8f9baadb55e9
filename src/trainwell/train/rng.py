"""Seeding and capturing every random number generator a run uses (for exact resumes)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "get_rng_state", "set_rng_state", "parse_seeds"]


def parse_seeds(text: str | Sequence[int | str]) -> list[int]:
    """``"0,1,2"``, ``"0-4"`` or a list → distinct integer seeds ≥ 0 (the ``--seeds`` option).

    Raises:
        ConfigError: naming ``--seeds``, for anything else (empty, repeats, negatives, text).
    """
    from trainwell.errors import ConfigError

    def bad() -> ConfigError:
        return ConfigError("--seeds", text, "distinct integers ≥ 0 separated by commas, "
                           "e.g. 0,1,2, or a range such as 0-4")

    parts = text.replace(" ", "").split(",") if isinstance(text, str) else list(text)
    seeds: list[int] = []
    for part in parts:
        if isinstance(part, bool):
            raise bad()
        if isinstance(part, str) and "-" in part[1:]:
            lo, hi = part.split("-", 1)
            try:
                seeds.extend(range(int(lo), int(hi) + 1))
            except ValueError:
                raise bad() from None
            continue
        if part == "":
            continue
        try:
            seeds.append(int(part))
        except (TypeError, ValueError):
            raise bad() from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise bad()
    return seeds


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """The global RNG states as plain data (tensors, ints, lists): loadable with weights_only."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": list(py_state), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
