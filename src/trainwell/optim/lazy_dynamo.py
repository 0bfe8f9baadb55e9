"""Keep torch's compiler (``torch._dynamo``, about a second to import) out of eager runs.

Two things in ``torch.optim`` import ``torch._dynamo`` even when nothing is ever compiled:

- the "never compile this" mark ``torch._disable_dynamo`` on ``add_param_group`` (so building
  any optimizer), ``zero_grad``, ``state_dict`` and ``load_state_dict`` is resolved on the first
  call, and resolving it imports ``torch._dynamo``;
- every optimizer's ``step`` runs inside a wrapper that imports ``torch._dynamo`` to place two
  graph breaks around the update (with gradients off unless ``differentiable``).

While ``torch._dynamo`` is not imported nothing can be compiling: marks and graph breaks do
nothing. So until then the marked methods are called directly and ``step`` only switches
gradients off; the moment anything imports ``torch._dynamo`` (``torch.compile``, a user's own
code), torch's own methods are put back. Behaviour is the same either way.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["defer_dynamo_import", "deferred_methods"]

_DYNAMO = "torch._dynamo"
_ATTR = "__dynamo_disable"  # where torch caches the resolved mark on the wrapped function
_marks: list[Callable] = []                            # functions whose mark is deferred
_steps: list[tuple[type, Callable, Callable]] = []     # (class, torch's step, the eager step)


def _optimizer_classes(torch: Any) -> list[type]:
    seen, todo = [], [torch.optim.Optimizer]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen


def _marked_methods(classes: list[type], torch: Any) -> Iterator[Callable]:
    """The plain functions behind every ``torch._disable_dynamo`` mark on the classes."""
    probe = torch._disable_dynamo(lambda: None).__code__
    for cls in classes:
        for attr in vars(cls).values():
            if getattr(attr, "__code__", None) is probe and hasattr(attr, "__wrapped__"):
                yield attr.__wrapped__


def _eager_step(torch: Any, torch_step: Callable) -> Callable:
    """``torch_step`` (torch's ``_use_grad`` wrapper) without its graph breaks."""
    raw = torch_step.__wrapped__

    @functools.wraps(torch_step)  # __wrapped__ = torch_step: inspect.unwrap still finds raw
    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _DYNAMO in sys.modules:  # compiling may be under way: torch's own wrapper
            return torch_step(self, *args, **kwargs)
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return raw(self, *args, **kwargs)
        finally:
            torch.set_grad_enabled(previous)

    return step


def _hand_back() -> None:
    """Put torch's own methods back (torch._dynamo is loaded now)."""
    while _marks:
        fn = _marks.pop()
        if getattr(fn, _ATTR, None) is fn:
            delattr(fn, _ATTR)  # torch resolves the mark again on the next call
    import torch

    while _steps:
        cls, torch_step, eager = _steps.pop()
        current = vars(cls).get("step")
        if current is eager:
            cls.step = torch_step
        elif getattr(current, "__wrapped__", None) is eager and getattr(current, "hooked", False):
            hooked = torch.optim.Optimizer.profile_hook_step(torch_step)  # as torch hooks it
            hooked.hooked = True
            cls.step = hooked


class _HandBackOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``torch._dynamo`` is imported, puts torch's methods back
    as soon as its module has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != _DYNAMO:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        run_module = getattr(getattr(spec, "loader", None), "exec_module", None)
        if run_module is None:
            _hand_back()
            return spec

        def exec_module(module: Any) -> None:
            try:
                run_module(module)
            finally:
                _hand_back()

        spec.loader.exec_module = exec_module
        return spec


def defer_dynamo_import() -> None:
    """Run torch's optimizers without importing ``torch._dynamo`` until something else does.

    Idempotent; does nothing when ``torch._dynamo`` is already loaded (then optimizers may
    already have been built with torch's methods) or torch's wrappers do not look as expected.
    Covers ``torch.optim`` and every optimizer class defined before the call.
    """
    if _DYNAMO in sys.modules or _marks or _steps:
        return
    import torch
    from torch.optim import optimizer as optimizer_module

    use_grad = getattr(optimizer_module, "_use_grad_for_differentiable", None)
    if not hasattr(torch, "_disable_dynamo") or use_grad is None:
        return
    classes = _optimizer_classes(torch)
    for fn in _marked_methods(classes, torch):
        if getattr(fn, _ATTR, None) is None:
            setattr(fn, _ATTR, fn)  # the resolved mark is the method itself: no import
            _marks.append(fn)
    use_grad_code = use_grad(lambda self: None).__code__
    for cls in classes:
        torch_step = vars(cls).get("step")
        if getattr(torch_step, "__code__", None) is use_grad_code \
                and hasattr(torch_step, "__wrapped__"):
            eager = _eager_step(torch, torch_step)
            cls.step = eager
            _steps.append((cls, torch_step, eager))
    if _marks or _steps:
        sys.meta_path.insert(0, _HandBackOnImport())


def deferred_methods() -> list[str]:
    """Qualified names of the torch methods now running without ``torch._dynamo``."""
    return [getattr(fn, "__qualname__", repr(fn)) for fn in _marks] \
        + [f"{cls.__qualname__}.step" for cls, _, _ in _steps]
