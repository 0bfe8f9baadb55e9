"""When to compile the training step (``train.compile = "auto"``) and where compiled code is kept.

``auto`` compiles only when the run is long enough for compiling to pay for itself. The rule
comes from the README's benchmark of model A (the chapter's five SELU layers, batch 32, 1,375
steps an epoch) on the project's 2-core CPU: the compiled step saves 0.25 s an epoch (0.98 vs
1.23 s), about 0.18 ms a step, and the first compiled call costs 4-15 s (less with the graph in
the disk cache). That pays back after roughly 20,000 steps with a cached graph, 80,000 without:
:data:`AUTO_COMPILE_MIN_STEPS` is the first figure, since a second run of the same network
shape finds the cache. Every test-sized run, and the default recipe (~5,000 steps), stays
eager. ``true`` and ``false`` keep their meaning.

The compiled code is cached on disk: inductor's FX-graph cache and AOT-autograd cache point at
``$TRAINWELL_CACHE/compile`` (default: ``compile`` in trainwell's user cache folder, see
:func:`trainwell.data.cache.user_cache_dir` — never inside a data folder, which may be shared or
read-only), so a second run of the same network shape reuses the
generated kernels instead of building them again. A folder the user set in
``TORCHINDUCTOR_CACHE_DIR`` is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["AUTO_COMPILE_MIN_STEPS", "compile_cache_dir", "enable_compile_cache",
           "resolve_compile", "cache_counters", "compile_summary"]

#: ``compile = "auto"`` compiles a run of at least this many optimizer steps (epochs × batches).
AUTO_COMPILE_MIN_STEPS = 20_000


def compile_cache_dir() -> Path:
    """``$TRAINWELL_CACHE/compile`` when set, else ``compile`` in the user cache folder."""
    env = os.environ.get("TRAINWELL_CACHE", "").strip()
    if env:
        return Path(env).expanduser() / "compile"
    from trainwell.data.cache import user_cache_dir  # noqa: PLC0415 - optional data layer
    return user_cache_dir() / "compile"


def enable_compile_cache() -> Path | None:
    """Turn on inductor's persistent FX-graph and AOT-autograd caches in trainwell's folder.

    Returns the folder, or None (no disk cache, compiling still works) when it cannot be made.
    """
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    path = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or compile_cache_dir())
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only data folder: compile without the disk cache
        return None
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path))
    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    return path


def cache_counters() -> tuple[int, int]:
    """(hits, misses) of inductor's FX-graph cache so far in this process."""
    from torch._dynamo.utils import counters
    c = counters["inductor"]
    return int(c.get("fxgraph_cache_hit", 0)), int(c.get("fxgraph_cache_miss", 0))


def resolve_compile(compile: Any, total_steps: int) -> bool:
    """``True``/``False`` as given; ``"auto"``: compile a run of ≥ AUTO_COMPILE_MIN_STEPS steps."""
    if compile == "auto":
        return total_steps >= AUTO_COMPILE_MIN_STEPS
    return bool(compile)


def compile_summary(trainer: Any) -> dict[str, Any]:
    """summary.json's ``compile``: what was asked, whether it ran, its cost, the cache."""
    step = trainer.train_step
    info = step.compile_info() if step is not None else {"ran": False}
    return {"requested": trainer.compile_mode, "decided": bool(trainer.compile), **info}
