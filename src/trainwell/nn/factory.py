"""Your own network in a recipe: ``[model] module = "package.module:factory"`` or ``"file.py:factory"``.

The factory is a function ``factory(input_shape, n_outputs, **args)`` returning an
``nn.Module`` that maps a batch of inputs to logits ``(batch, n_outputs)``; ``args`` are the
recipe's ``[model.args]``. The module is checked once with a forward pass on two zero inputs,
so a factory that cannot be imported, raises, or returns the wrong thing is one clear
:class:`~trainwell.errors.ConfigError` naming ``model.module`` before any training starts.

The built module records ``trainwell_config`` (kind, module, args, input_shape, n_outputs,
task), so it saves, reloads, resumes, transfers and exports like a builder network.

The Python spelling, ``save_model(model, dir, factory="pkg.mod:fn", factory_args={...})`` for
a module built by hand, is the same record without the shapes: :func:`build_from_factory`
with no ``input_shape`` calls ``fn(**factory_args)``. Both are stored in ``model.json`` as
``trainwell_config`` and rebuilt by :func:`rebuild_from_config`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.errors import ConfigError

__all__ = ["build_from_factory", "rebuild_from_config", "resolve_factory",
           "absolute_factory_spec"]

_WHERE = '"package.module:function" (importable) or "path/to/file.py:function", a function '
_ACCEPTED_FOR = {"model.module": _WHERE + "taking input_shape, n_outputs and the [model.args]",
                 "factory": _WHERE + "that builds the module from factory_args"}


def _accepted(field: str) -> str:
    return _ACCEPTED_FOR.get(field, _ACCEPTED_FOR["model.module"])


def absolute_factory_spec(spec: str, base: str | Path | None = None) -> str:
    """``spec`` with a relative ``file.py`` made absolute (against ``base`` or the cwd)."""
    if not isinstance(spec, str) or ":" not in spec:
        return spec
    where, _, name = spec.rpartition(":")
    if where.endswith(".py") and not Path(where).is_absolute():
        where = str((Path(base) if base is not None else Path.cwd()).joinpath(where).resolve())
    return f"{where}:{name}"


def _import_file(path: Path, spec: str, field: str) -> Any:
    if not path.is_file():
        raise ConfigError(field, spec, _accepted(field) + f"; the file {path} does not exist")
    key = f"trainwell_user_module_{abs(hash(str(path.resolve())))}"
    if key in sys.modules:
        return sys.modules[key]
    loader_spec = importlib.util.spec_from_file_location(key, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(field, spec, _accepted(field) + f"; {path} is not a Python file")
    mod = importlib.util.module_from_spec(loader_spec)
    sys.modules[key] = mod
    try:
        loader_spec.loader.exec_module(mod)
    except Exception as exc:
        del sys.modules[key]
        raise ConfigError(field, spec, f"a file that imports cleanly; {path} raised "
                          f"{type(exc).__name__}: {exc}") from exc
    return mod


def resolve_factory(spec: Any, field: str = "model.module") -> Any:
    """The callable named by ``spec`` (``"pkg.mod:fn"`` or ``"file.py:fn"``).

    Raises:
        ConfigError: ``field`` (``model.module`` in a recipe, ``factory`` for save_model)
            when it is malformed, cannot be imported, or does not name a callable.

    Example:
        >>> resolve_factory("torch.nn:Identity")
        <class 'torch.nn.modules.linear.Identity'>
    """
    if not isinstance(spec, str) or spec.count(":") < 1 or not spec.rpartition(":")[2]:
        raise ConfigError(field, spec, _accepted(field))
    where, _, name = spec.rpartition(":")
    if where.endswith(".py"):
        mod = _import_file(Path(where), spec, field)
    else:
        try:
            mod = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(field, spec, _accepted(field) + f"; cannot import {where!r} "
                              f"({exc}); is it installed or on PYTHONPATH?") from exc
        except Exception as exc:
            raise ConfigError(field, spec, f"a module that imports cleanly; {where} "
                              f"raised {type(exc).__name__}: {exc}") from exc
    factory = getattr(mod, name, None)
    if factory is None or not callable(factory):
        raise ConfigError(field, spec, _accepted(field) + f"; {where} has no function {name!r}")
    return factory


def build_from_factory(spec: str, *, input_shape: Sequence[int] | None = None,
                       n_outputs: int | None = None, args: dict[str, Any] | None = None,
                       task: str = "multiclass", reuse: int | None = None,
                       source_n_outputs: int | None = None, field: str = "model.module",
                       args_field: str = "model.args") -> nn.Module:
    """Call the factory and check what it returns (a module giving ``(batch, n_outputs)``).

    With ``input_shape`` and ``n_outputs`` (a recipe's ``[model] module``) the factory is
    called as ``factory(input_shape=..., n_outputs=..., **args)`` and its logits are checked;
    without them (``save_model(factory=..., factory_args=...)``) as ``factory(**args)``. The
    module records how it was built in ``trainwell_config`` (see :func:`rebuild_from_config`).

    Args:
        spec: ``"package.module:factory"`` or ``"file.py:factory"``.
        input_shape: the shape of one sample, passed to the factory.
        n_outputs: logits per sample, passed to the factory.
        args: extra keyword arguments (``[model.args]``).
        task: recorded in ``trainwell_config``.
        field, args_field: the names errors give ``spec`` and ``args``.

    Raises:
        ConfigError: ``model.module`` (not importable, the factory raised, not a module, or
            logits of the wrong shape) or ``model.args``.

    Example:
        >>> # models.py: def small_cnn(input_shape, n_outputs, width=32): return nn.Sequential(...)
        >>> m = build_from_factory("models.py:small_cnn", input_shape=(28, 28), n_outputs=10,
        ...                        args={"width": 16})                       # doctest: +SKIP
    """
    if args is not None and not isinstance(args, dict):
        raise ConfigError(args_field, args, "a table of keyword arguments for the factory")
    args = dict(args or {})
    factory = resolve_factory(spec, field)
    shaped = input_shape is not None
    if shaped:
        shape = tuple(int(d) for d in input_shape)
        built_for = int(source_n_outputs if reuse is not None and source_n_outputs
                        else n_outputs)
        call = {"input_shape": shape, "n_outputs": built_for, **args}
    else:
        call = args
    try:
        model = factory(**call)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(field, spec, f"a factory that builds the network; it raised "
                          f"{type(exc).__name__}: {first}") from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(field, spec, f"a factory returning a torch.nn.Module; it "
                          f"returned a {type(model).__name__}")
    config: dict[str, Any] = {"kind": "module", "module": spec, "args": args}
    if not shaped:   # built by hand from Python: the arguments are the whole call
        model.trainwell_config = config
        return model
    _check_output(model, spec, shape, built_for)
    config.update(input_shape=list(shape), n_outputs=int(n_outputs), task=task)
    if reuse is not None:  # a transferred network: the factory's lower blocks, a new head
        from trainwell.nn.surgery import keep_blocks
        model = keep_blocks(model, int(reuse), int(n_outputs), shape)
        config.update(reuse=int(reuse), source_n_outputs=built_for)
    model.trainwell_config = config
    return model


def rebuild_from_config(config: dict[str, Any]) -> nn.Module:
    """The module a ``kind = "module"`` ``trainwell_config`` describes, built again (untrained).

    One record for both spellings: a recipe's ``[model] module`` (with the shapes) and
    ``save_model(factory=..., factory_args=...)`` (without). ``model.json`` files that hold
    the older ``"factory": {"ref", "args"}`` are read by :func:`~trainwell.nn.load_model`
    as the same record.
    """
    return build_from_factory(config.get("module"), input_shape=config.get("input_shape"),
                              n_outputs=config.get("n_outputs"), args=config.get("args"),
                              task=config.get("task", "multiclass"),
                              reuse=config.get("reuse"),
                              source_n_outputs=config.get("source_n_outputs"))


def _check_output(model: nn.Module, spec: str, shape: tuple[int, ...], n_outputs: int) -> None:
    """One eval-mode forward on two zero samples (RNG and BN statistics untouched)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            ref = next((p for p in model.parameters()), None)
            x = torch.zeros(2, *shape, dtype=ref.dtype if ref is not None else torch.float32,
                            device=ref.device if ref is not None else None)
            out = model(x)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError("model.module", spec, f"a module that accepts inputs of shape "
                          f"(batch, {', '.join(map(str, shape))}); its forward raised "
                          f"{type(exc).__name__}: {first}") from exc
    finally:
        model.train(was_training)
    want = {(2, n_outputs)} | ({(2,)} if n_outputs == 1 else set())
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got not in want:
        raise ConfigError("model.module", spec, f"a module returning logits of shape "
                          f"(batch, {n_outputs}) for this data; it returned {got} for a "
                          "batch of 2")
