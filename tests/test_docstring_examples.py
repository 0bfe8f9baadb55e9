"""The examples in the docstrings of the finished modules run as written (doctest).

Examples that need the real dataset or a trained run are marked ``# doctest: +SKIP``; every
other example must produce the output it shows, so a user can paste it.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import trainwell

PACKAGES = ["trainwell.nn", "trainwell.optim", "trainwell.data", "trainwell.diagnose",
            "trainwell.export", "trainwell.config", "trainwell.report", "trainwell.workflows",
            "trainwell.studies"]
MODULES = ["trainwell", "trainwell.tasks", "trainwell.errors", "trainwell.registry",
           "trainwell.checks", "trainwell.figures"]


def _modules() -> list[str]:
    names = list(MODULES)
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        names += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules(mod.__path__)]
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    torch.manual_seed(0)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             extraglobs={"trainwell": trainwell}, verbose=False, report=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
