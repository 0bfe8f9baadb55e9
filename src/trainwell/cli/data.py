"""``trainwell data``: fetch datasets into the cache and show what is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from trainwell.cli import options
from trainwell.console import make_console
from trainwell.errors import ConfigError, TrainwellError

__all__ = ["register", "data_app"]

data_app = typer.Typer(help="Datasets: fetch them into the data folder, show where they are.",
                       no_args_is_help=True)

_CACHE_OPT = typer.Option(None, "--data-dir", help="data folder (default: $TRAINWELL_DATA, "
                          "else the user cache dir)")


def _fail(exc: TrainwellError) -> None:
    make_console(stderr=True, highlight=False).print(f"error: {exc}", markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _root(data_dir_opt: Path | None) -> Path:
    from trainwell.data import data_dir

    return data_dir_opt if data_dir_opt is not None else data_dir()


def _counts(y: np.ndarray, names: list[str] | None, n: int) -> str:
    counts = np.bincount(y, minlength=n)
    names = names or [str(i) for i in range(n)]
    return ", ".join(f"{name}: {c}" for name, c in zip(names, counts, strict=False))


def _describe(raw, console) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("task", f"{raw.task} ({raw.n_outputs} output{'s' if raw.n_outputs != 1 else ''})")
    table.add_row("train", f"x {tuple(raw.x_train.shape)} {raw.x_train.dtype}, y {tuple(raw.y_train.shape)}")
    if raw.x_test is not None:
        table.add_row("test", f"x {tuple(raw.x_test.shape)} {raw.x_test.dtype}, y {tuple(raw.y_test.shape)}")
    else:
        table.add_row("test", "none in the file (20% of the training rows are held out)")
    if raw.class_names:
        table.add_row("classes", ", ".join(raw.class_names))
    if raw.task == "multiclass":
        table.add_row("train counts", _counts(raw.y_train, raw.class_names, raw.n_outputs))
        if raw.y_test is not None:
            table.add_row("test counts", _counts(raw.y_test, raw.class_names, raw.n_outputs))
    console.print(table)


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _describe_folder(path: Path, console) -> None:
    """Image folders and .npy pairs: counts per class, shape, dtype, size, streaming."""
    from trainwell.data.folders import AUTO_SHARE, memory_bytes, should_stream
    from trainwell.data.sources import is_npy_folder, open_npy_pairs, scan_image_folder

    table = Table(show_header=False, box=None)
    if is_npy_folder(path):
        x, y, xt, yt = open_npy_pairs(path)
        from trainwell.data.files import infer_task

        task, n_out = infer_task(y, where=f"{path} y")
        parts = [("train", x, y)] + ([("test", xt, yt)] if xt is not None else [])
        table.add_row("kind", ".npy pair (memory-mapped)")
        names = None
        skipped: list[str] = []
    else:
        folder = scan_image_folder(path, skip_bad=True)
        task, n_out, names = "multiclass", len(folder.class_names), folder.class_names
        parts = [("train", folder.train, folder.y_train)] + (
            [("test", folder.test, folder.y_test)] if folder.test is not None else [])
        table.add_row("kind", "image folder (read with Pillow)")
        skipped = folder.skipped
    table.add_row("task", f"{task} ({n_out} output{'s' if n_out != 1 else ''})")
    for part, src, ys in parts:
        table.add_row(part, f"{len(src)} samples of shape {tuple(src.shape)}, {src.dtype}")
        if task == "multiclass":
            table.add_row(f"{part} counts", _counts(np.asarray(ys), names, n_out))
    if len(parts) == 1:
        table.add_row("test", "none (20% of the samples are held out)")
    if skipped:
        table.add_row("unreadable", f"{len(skipped)} (first: {skipped[0]}); "
                      "data.skip_bad = true skips them, else training stops there")
    nbytes = sum(src.nbytes_float32() for _, src, _ in parts)
    table.add_row("size on disk", _human(_size_on_disk(path)))
    table.add_row("in memory", f"{_human(nbytes)} as float32")
    total = memory_bytes()
    stream = should_stream("auto", nbytes)
    why = (f"over {AUTO_SHARE:.0%} of this machine's {_human(total)}" if stream else
           f"fits in {AUTO_SHARE:.0%} of this machine's {_human(total)}") if total else \
        "memory size unknown"
    table.add_row("streams", f"{'yes' if stream else 'no'} with data.stream = \"auto\" ({why})")
    console.print(f"{path}: user data", markup=False)
    console.print(table)


@data_app.command("fetch")
def fetch(name: str = typer.Argument(..., help="fashion_mnist, mnist or cifar10"),
          data_dir_opt: Path | None = _CACHE_OPT,
          quiet: Annotated[bool, options.quiet("no progress bar")] = False) -> None:
    """Download (sha256 checked) or find a dataset in the data folder, and show where it is."""
    from trainwell.data import DATASETS
    from trainwell.data.builtin import load_builtin, obtain

    console = make_console(highlight=False)
    try:
        entry = DATASETS.get(name, field="dataset")
        if entry.meta.get("kind") != "builtin":
            raise TrainwellError(f"dataset {entry.name!r} is a file format, nothing to fetch; "
                                 f"pass the file path to `trainwell data info`")
        kind, path = obtain(entry.obj, _root(data_dir_opt), progress=not quiet)
        raw = load_builtin(entry.obj, kind, path)
    except TrainwellError as exc:
        _fail(exc)
    console.print(f"{entry.name}: ready in {path}", markup=False)
    if not quiet:
        _describe(raw, console)


@data_app.command("info")
def info(name: str = typer.Argument(..., help="a dataset name, a .npz/.csv file, an image "
                                    "folder (root/<class>/*.png) or a folder with x.npy/y.npy"),
         data_dir_opt: Path | None = _CACHE_OPT,
         target: str = typer.Option("target", help="target column of a CSV file")) -> None:
    """Source, license, cache path, whether it is present, shapes, class names and counts."""
    from trainwell.data import DATASETS, load_raw
    from trainwell.data.builtin import find_files, load_builtin

    console = make_console(highlight=False)
    try:
        suffix = Path(name).suffix.lower()
        if DATASETS.canonical(name) is None and (Path(name).is_dir() or suffix == ".npy"):
            _describe_folder(Path(name), console)
            return
        if suffix in (".npz", ".csv"):
            raw = load_raw(name, target=target)
            console.print(f"{name}: user file", markup=False)
            _describe(raw, console)
            return
        if suffix and DATASETS.canonical(name) is None:   # a file, not a dataset name
            builtins = [n for n, e in DATASETS.items() if e.meta.get("kind") == "builtin"]
            raise ConfigError("NAME", name, "a .npz or .csv file, or a dataset name: "
                              + ", ".join(builtins))
        entry = DATASETS.get(name, field="dataset")
        if entry.meta.get("kind") != "builtin":
            console.print(f"{entry.name}: {entry.description}", markup=False)
            return
        ds = entry.obj
        root = _root(data_dir_opt)
        found = find_files(ds, root)
        table = Table(show_header=False, box=None)
        table.add_row("dataset", f"{ds.name} — {ds.title}")
        table.add_row("source", ds.homepage + (f" (fallback: {ds.fallback})" if ds.fallback else ""))
        table.add_row("license", ds.license)
        table.add_row("data folder", str(root / ds.folder))
        table.add_row("files", ", ".join(ds.files))
        table.add_row("present", f"yes ({found[1]})" if found else
                      f"no — run `trainwell data fetch {ds.name}` or place the files there")
        console.print(table)
        if found:
            _describe(load_builtin(ds, *found), console)
        else:
            console.print("classes: " + ", ".join(ds.class_names), markup=False)
    except TrainwellError as exc:
        _fail(exc)


@data_app.command("list")
def list_datasets() -> None:
    """The built-in datasets and file formats trainwell reads."""
    from trainwell.data import DATASETS

    table = Table("name", "description", "input shape", "classes")
    for name, entry in DATASETS.items():
        shape = entry.meta.get("input_shape")
        names = entry.meta.get("class_names")
        table.add_row(name, entry.description, str(shape) if shape else "from the file",
                      str(len(names)) if names else "inferred")
    make_console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group (``fetch``, ``info``, ``list``) to ``app``."""
    app.add_typer(data_app, name="data")
