"""Old import paths of moved modules keep working: ``trainwell.recipe`` is ``trainwell.config``.

The package layout groups modules by role (config, workflows, studies, report). Users' imports of
the old paths load the new module itself (not a copy), so ``from trainwell.run import fit_recipe``
and ``monkeypatch.setattr("trainwell.run.X", ...)`` act on the one module that does the work.
``python -m OLD`` runs the new module named as its entry point.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "MOVED_NAMES", "install", "forward"]

#: old module path -> new module path (a package entry covers everything below it)
MOVED: dict[str, str] = {
    "trainwell.recipe": "trainwell.config",
    "trainwell.compose": "trainwell.workflows.compose",
    "trainwell.run": "trainwell.workflows.run",
    "trainwell.lrfind": "trainwell.workflows.lrfind",
    "trainwell.transfer": "trainwell.workflows.transfer",
    "trainwell.pretrain": "trainwell.workflows.pretrain",
    "trainwell.uncertainty": "trainwell.workflows.uncertainty",
    "trainwell.compare": "trainwell.studies.compare",
    "trainwell.tune": "trainwell.studies.tune",
    "trainwell.experiments": "trainwell.studies.experiments",
    "trainwell.diagnose.api": "trainwell.workflows.diagnose",
}

#: package -> {public name it used to define: the module that defines it now}
MOVED_NAMES: dict[str, dict[str, str]] = {
    "trainwell.diagnose": {
        "diagnose": "trainwell.workflows.diagnose",
        "DiagnoseResult": "trainwell.workflows.diagnose",
        "write_run_diagnostics": "trainwell.report.diagnostics",
    },
}

#: old module path -> the module ``python -m OLD`` runs
MAIN: dict[str, str] = {"trainwell.recipe": "trainwell.config.docs"}


def new_name(fullname: str) -> str | None:
    """The current path of ``fullname`` if it is an old one (``None`` otherwise)."""
    for old, new in MOVED.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 - importlib protocol
        new = new_name(fullname)
        if new is None:
            return None
        target = importlib.util.find_spec(new)
        # an entry point for `python -m OLD` is run as a module, not as a package's __main__
        is_pkg = target is not None and target.submodule_search_locations is not None \
            and fullname not in MAIN
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_pkg)

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        return importlib.import_module(new_name(spec.name))

    def exec_module(self, module: ModuleType) -> None:
        pass  # the new module is already executed

    def get_code(self, fullname: str):  # noqa: ANN201 - for `python -m OLD`
        target = MAIN.get(fullname) or new_name(fullname)
        spec = importlib.util.find_spec(target)
        return spec.loader.get_code(target)


def install() -> None:
    """Put the finder of old paths first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())


def forward(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that hands out the names ``package`` used to define.

    The library itself imports them from where they live now (tests/test_architecture.py);
    this keeps users' ``from trainwell.diagnose import diagnose`` working without the package
    importing a layer above it.
    """
    names = MOVED_NAMES[package]

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
