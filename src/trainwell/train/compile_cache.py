"""When to compile the training step (``train.compile = "auto"``) and where compiled code is kept.

``auto`` compiles only when the run is long enough for compiling to pay for itself. The rule
comes from a measurement of model A (784-300-100 ReLU, batch 32) on the project's 2-core CPU:
compiling the whole step costs about 15 s without a cached graph (minutes when the CPU is
heavily shared) and saves about 0.4 ms per step, so it pays back after some 40,000 steps
with an empty cache; :data:`AUTO_COMPILE_MIN_STEPS` is set at half of that, since a cached
graph (a second run of the same network shape) costs far less. Every test-sized run stays
eager. ``true`` and ``false`` keep their meaning.

The compiled code is cached on disk: inductor's FX-graph cache and AOT-autograd cache point at
``$TRAINWELL_CACHE/compile`` (default: ``<data folder>/compile``, see
:func:`trainwell.data.cache.data_dir`), so a second run of the same network shape reuses the
generated kernels instead of building them again. A folder the user set in
``TORCHINDUCTOR_CACHE_DIR`` is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["AUTO_COMPILE_MIN_STEPS", "compile_cache_dir", "enable_compile_cache",
           "resolve_compile", "cache_counters"]

#: ``compile = "auto"`` compiles a run of at least this many optimizer steps (epochs × batches).
AUTO_COMPILE_MIN_STEPS = 20_000


def compile_cache_dir() -> Path:
    """``$TRAINWELL_CACHE/compile`` when set, else ``<data folder>/compile``."""
    env = os.environ.get("TRAINWELL_CACHE", "").strip()
    if env:
        return Path(env).expanduser() / "compile"
    from trainwell.data.cache import data_dir  # noqa: PLC0415 - optional data layer
    return data_dir() / "compile"


def enable_compile_cache() -> Path:
    """Turn on inductor's persistent FX-graph and AOT-autograd caches in trainwell's folder."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    path = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or compile_cache_dir())
    path.mkdir(parents=True, exist_ok=True)
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
