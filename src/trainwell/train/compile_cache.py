"""When to compile the training step (``train.compile = "auto"``) and where compiled code is kept.

``auto`` compiles only when the run is long enough for compiling to pay for itself. The rule
comes from the README's benchmark of model A (the chapter's five SELU layers, batch 32, 1,375
steps an epoch) on the project's shared 2-core CPU, 1 thread: the compiled step saves about
0.6 CPU-s an epoch (1.69 vs 2.30 s), about 0.44 ms a step, and the first compiled call costs
about 12-16 s of wall time on that loaded machine when inductor's disk cache has the kernels
(the trace itself is not cached), 20-30 s when it does not. That pays back after roughly
10,000 steps with the graph cached and 20,000 without: :data:`AUTO_COMPILE_MIN_STEPS_CACHED`
and :data:`AUTO_COMPILE_MIN_STEPS`. Whether the graph is cached is known from a note trainwell
leaves next to the cache when a step of the same :func:`graph_key` (network, optimizer,
batch size, loss and step settings) was compiled. Every test-sized run, and the default recipe
(~5,000 steps), stays eager; model A as the chapter trains it (20 epochs, 27,500 steps)
compiles. ``true`` and ``false`` keep their meaning.

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

__all__ = ["AUTO_COMPILE_MIN_STEPS", "AUTO_COMPILE_MIN_STEPS_CACHED", "compile_cache_dir",
           "enable_compile_cache", "resolve_compile", "cache_counters", "compile_summary",
           "graph_key", "graph_is_cached", "remember_graph"]

#: ``compile = "auto"`` compiles a run of at least this many optimizer steps (epochs × batches).
AUTO_COMPILE_MIN_STEPS = 20_000
#: ... or of this many when the same step (network, optimizer, batch size) was compiled
#: before on this machine: its kernels are in the disk cache and compiling costs far less.
AUTO_COMPILE_MIN_STEPS_CACHED = 10_000


def compile_cache_dir() -> Path:
    """``$TRAINWELL_CACHE/compile`` when set, else ``compile`` in the user cache folder."""
    from trainwell.data.cache import trainwell_cache_dir  # noqa: PLC0415 - optional data layer
    return trainwell_cache_dir("compile")


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


def resolve_compile(compile: Any, total_steps: int, cached: bool = False) -> bool:
    """``True``/``False`` as given; ``"auto"``: compile a run of ≥ AUTO_COMPILE_MIN_STEPS steps
    (≥ AUTO_COMPILE_MIN_STEPS_CACHED when the step's graph is cached: :func:`graph_is_cached`)."""
    if compile == "auto":
        least = AUTO_COMPILE_MIN_STEPS
        return total_steps >= (min(least, AUTO_COMPILE_MIN_STEPS_CACHED) if cached else least)
    return bool(compile)


def graph_key(model: Any, optimizer: Any, batch_size: int, **settings: Any) -> str:
    """What decides the compiled step's graph, as a short hash: the network (its modules and
    parameter shapes), the optimizer's class and fixed hyperparameters, the batch size and
    the step's settings (loss, clipping, penalties), and the torch version."""
    import hashlib

    import torch

    shapes = [(n, tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()]
    groups = [{k: v for k, v in g.items() if k not in ("params", "lr", "betas", "momentum")}
              for g in optimizer.param_groups]
    text = repr((torch.__version__, repr(model), shapes, type(optimizer).__qualname__,
                 repr(groups), int(batch_size), sorted((k, repr(v)) for k, v in settings.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _marker(key: str) -> Path:
    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or compile_cache_dir()) / \
        "trainwell-steps" / key


def graph_is_cached(key: str) -> bool:
    """Whether a step with this :func:`graph_key` was compiled into the disk cache before."""
    try:
        return _marker(key).is_file()
    except OSError:
        return False


def remember_graph(key: str) -> None:
    """Note that the step with this key is in the disk cache (nothing when it cannot write)."""
    try:
        path = _marker(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass


def compile_summary(trainer: Any) -> dict[str, Any]:
    """summary.json's ``compile``: what was asked, whether it ran, its cost, the cache."""
    step = trainer.train_step
    info = step.compile_info() if step is not None else {"ran": False}
    return {"requested": trainer.compile_mode, "decided": bool(trainer.compile), **info}
