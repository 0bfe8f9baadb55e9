"""The house: imports point down the layers, no import circles, small modules, old paths work.

Layers, bottom to top (docs/internals.md § Layers): the foundation (errors, registry, checks,
figures) → the engine (nn, optim, data, train, tasks) → config (the recipe schema, built from
the engine's registries) → diagnose → report (the run directory) → workflows and export (a
recipe made into a run) → studies (many runs) → cli. A module may import its own layer and the
layers below; every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from trainwell import _moved

SRC = Path(__file__).resolve().parents[1] / "src" / "trainwell"
MAX_LINES = 450

#: top-level module or package of trainwell -> its layer (higher imports lower, never the reverse)
LAYERS: dict[str, int] = {
    "errors": 0, "registry": 0, "checks": 0, "figures": 0, "_moved": 0, "console": 0,
    "notebook": 0, "atomic": 0, "runlock": 0,
    "nn": 1, "optim": 1, "data": 1, "train": 1, "tasks": 1,
    "config": 2,
    "diagnose": 3,
    "report": 4,
    "workflows": 5, "export": 5,
    "studies": 6, "sklearn": 6,
    "cli": 7, "__main__": 7,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _named_imports(text: str) -> set[str]:
    """The absolute module paths named by the import statements of ``text``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def _imports(module: str) -> set[str]:
    return _imports_in(module, MODULES[module].read_text(encoding="utf-8"))


def _imports_in(module: str, text: str) -> set[str]:
    """Every trainwell module ``module`` imports, at the top or inside a function."""
    f = MODULES[module]
    pkg = module if f.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            r = _resolve(t)
            if r and r != module and r != "trainwell":
                found.add(r)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if m != "trainwell" and _layer(m) is None)
    assert not missing, f"add these to LAYERS (and to docs/internals.md): {missing}"


def test_imports_point_down_the_layers():
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in GRAPH.items() if m != "trainwell"
              for t in sorted(targets) if _layer(t) is not None and _layer(t) > _layer(m)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph = {m: {t for t in ts if t != "trainwell"} for m, ts in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_level_imports_count():
    # lrfind once added its report section through run.py, imported inside a function
    src = "def f():\n    from trainwell.report.rundir import add_summary_section\n"
    assert _imports_in("trainwell.workflows.lrfind", src) == {"trainwell.report.rundir"}


def test_the_library_uses_no_old_paths():
    old = [f"{m} imports {t}" for m, f in MODULES.items()
           for t in _named_imports(f.read_text(encoding="utf-8")) if _moved.new_name(t)]
    assert not old, "import these from where they live now:\n" + "\n".join(old)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module):
    n = sum(1 for _ in MODULES[module].open(encoding="utf-8"))
    assert n <= MAX_LINES, f"{MODULES[module].relative_to(SRC.parent)} has {n} lines (> {MAX_LINES})"


OLD_PATHS = {
    "trainwell.recipe": ["Recipe", "load_recipe", "loads_recipe", "save_recipe", "to_toml",
                         "apply_overrides", "resolve", "resolve_recipe", "builtin_recipes",
                         "builtin_path", "recipe_diff", "accepted_values", "reference_markdown",
                         "SECTIONS", "schedule_params", "UnknownFieldError", "recipe_from_dict"],
    "trainwell.compose": ["build_from_recipe", "load_splits", "resolved_task"],
    "trainwell.run": ["fit_recipe", "load_run", "new_run_dir", "add_summary_section",
                      "read_summary", "write_summary", "write_report", "evaluate_model",
                      "resolve_run_dir", "save_run_artifacts", "RunResult", "LoadedRun"],
    "trainwell.lrfind": ["find_lr", "lr_find_recipe", "suggest_lr", "plot_lr_find"],
    "trainwell.transfer": ["reuse_layers", "freeze", "unfreeze", "fine_tune", "plot_fine_tune"],
    "trainwell.pretrain": ["greedy_pretrain"],
    "trainwell.uncertainty": ["mc_predict", "calibration", "evaluate_uncertainty"],
    "trainwell.compare": ["run_comparison", "load_spec", "grid_variants"],
    "trainwell.tune": ["run_study", "load_space", "print_best_trials"],
    "trainwell.experiments": [],
    "trainwell.experiments.transfer_study": [],
    "trainwell.experiments.pretrain_study": [],
    "trainwell.diagnose.api": ["diagnose", "DiagnoseResult", "write_run_diagnostics"],
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_still_import(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(_moved.new_name(old))  # the module itself
    for name in OLD_PATHS[old]:
        assert hasattr(module, name), f"{old}.{name} is gone"


def test_names_that_moved_out_of_a_package_still_import_from_it():
    for package, names in _moved.MOVED_NAMES.items():
        module = importlib.import_module(package)
        for name, home in names.items():
            assert getattr(module, name) is getattr(importlib.import_module(home), name)
    from trainwell.diagnose import diagnose  # noqa: F401 - the form users wrote


def test_python_m_old_path_runs_the_new_entry_point():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "trainwell.recipe"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("# Recipe reference")
