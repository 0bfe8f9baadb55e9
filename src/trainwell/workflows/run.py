"""Fit a recipe into a run directory and read a finished run back.

Every command that trains writes the same layout (:mod:`trainwell.report.rundir`), so that the
report, ``evaluate``, ``predict``, ``export``, ``transfer`` and ``--resume`` all read one format.
A run directory is never reused: a second run started in the same second gets a suffix
(``-2``, ``-3``, ...).

Example:
    >>> from trainwell.config import resolve
    >>> result = fit_recipe(resolve("default"), out="runs")   # doctest: +SKIP
    >>> result.summary["metrics"]["final"]["test_accuracy"]    # doctest: +SKIP
    0.89
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.atomic import atomic_write
from trainwell.config import Recipe, load_recipe, recipe_diff, save_recipe
from trainwell.errors import CheckpointError, ConfigError, DataError, TrainwellError
from trainwell.report.artifacts import (  # noqa: F401 - trainwell.run names
    _status_message,
    save_run_artifacts,
)
from trainwell.report.rundir import (
    SUMMARY,  # noqa: F401 - trainwell.workflows.run.SUMMARY stays importable
    _json_safe,  # noqa: F401
    add_summary_section,
    new_run_dir,
    read_summary,
    resolve_run_dir,
    write_report,
    write_summary,
)
from trainwell.runlock import RunLock
from trainwell.train.checkpoint import latest_checkpoint
from trainwell.train.evaluate import evaluate_model
from trainwell.train.weighting import class_weight_arg

__all__ = [
    "RunResult",
    "LoadedRun",
    "new_run_dir",
    "fit_recipe",
    "save_run_artifacts",
    "add_summary_section",
    "read_summary",
    "write_summary",
    "write_report",
    "load_run",
    "evaluate_model",
    "resolve_run_dir",
]


@dataclass
class RunResult:
    """What :func:`fit_recipe` returns: the run folder and the live objects."""

    run_dir: Path
    trainer: Any
    model: Any
    splits: Any
    history: Any
    summary: dict[str, Any]

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    def _repr_html_(self) -> str:
        return _run_html(self.summary, self.run_dir, self.history.to_list()
                         if hasattr(self.history, "to_list") else list(self.history or []))


def _run_html(summary: dict[str, Any], run_dir: Path | None, history: list[dict]) -> str:
    """Jupyter: status, final metrics per split, learning curves and where the report is."""
    import html as _html

    from trainwell.notebook import curves_img, html_table, section

    final = (summary.get("metrics") or {}).get("final") or {}
    splits = [s for s in ("train", "val", "test") if any(k.startswith(f"{s}_") for k in final)]
    names = sorted({k.split("_", 1)[1] for k in final}, key=lambda n: (n != "loss", n))
    table = html_table(["split", *names], [[s, *[final.get(f"{s}_{n}") for n in names]]
                                           for s in splits]) if final else ""
    where = ""
    if run_dir is not None:
        report = Path(run_dir) / "report.html"
        where = (f"<div>run folder: <code>{_html.escape(str(run_dir))}</code>"
                 + (f" — report: <code>{_html.escape(str(report))}</code>"
                    if report.exists() else "") + "</div>")
    title = (f"{summary.get('name', 'run')}: {summary.get('status', 'unknown')}, "
             f"{summary.get('epochs_run', len(history))} epochs")
    message = summary.get("message")
    return section(title, f"<div>{_html.escape(message)}</div>" if message else "", table,
                   curves_img(history), where)


@dataclass
class LoadedRun:
    """A finished run read back from disk (:func:`load_run`).

    ``splits_loader()`` loads the run's dataset with its recipe (only when called: data can be
    large); ``model`` is in eval mode on the CPU and carries ``trainwell_extra`` (task, class
    names, data statistics).
    """

    recipe: Recipe
    model: Any
    splits_loader: Callable[[], Any]
    summary: dict[str, Any]
    run_dir: Path | None = None
    model_info: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return (self.model_info.get("extra") or {}).get("task") or self.summary.get(
            "dataset", {}).get("task", "multiclass")

    def _repr_html_(self) -> str:
        from trainwell.report.rundir import _read_history

        history = _read_history(Path(self.run_dir)) if self.run_dir is not None else []
        return _run_html(self.summary, self.run_dir, history)


def _epochs_trained(run_dir: Path) -> int:
    """Epochs a run finished: ``epochs_run`` of its summary, else the rows of history.json."""
    n = read_summary(run_dir).get("epochs_run")
    if isinstance(n, int):
        return n
    try:
        rows = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
        return max((int(r.get("epoch", 0)) for r in rows), default=0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0  # nothing readable: the checkpoint decides


# --------------------------------------------------------------------------- fit
def _absolute_data_path(recipe: Recipe) -> Recipe:
    """The recipe with a relative data file made absolute (re-runnable from anywhere)."""
    d = recipe.data
    changes = {}
    for key in ("dataset", "path"):
        value = getattr(d, key)
        if value and value.lower().endswith((".npz", ".csv")) and not os.path.isabs(value):
            changes[key] = str(Path(value).resolve())
    if d.dataset in ("images", "npy") and d.path and not os.path.isabs(d.path):
        changes["path"] = str(Path(d.path).resolve())
    m = recipe.model
    if m.module:  # a factory file given relative to here keeps working from anywhere
        from trainwell.nn.factory import absolute_factory_spec
        spec = absolute_factory_spec(m.module)
        if spec != m.module:
            recipe = recipe.model_copy(update={"model": m.model_copy(update={"module": spec})})
    if not changes:
        return recipe
    return recipe.model_copy(update={"data": d.model_copy(update=changes)})


def _print(console: Any, *objects: Any) -> None:
    if console is not None:
        console.print(*objects)


def fit_recipe(recipe: Recipe, *, out: str | os.PathLike = "runs", quiet: bool = False,
               resume: str | os.PathLike | None = None, callbacks: Sequence[Any] = (),
               model: Any = None, splits: Any = None, run_name: str | None = None,
               force: bool = False, console: Any = None, interrupt: str = "raise") -> RunResult:
    """Train ``recipe`` and write a complete run directory.

    Prints the model summary first (unless ``quiet``); trains with progress, history logging,
    checkpoints (``checkpoints/last.pt`` every ``train.checkpoint_every_epochs``, ``best.pt``
    by ``train.monitor``), early stopping (``train.early_stopping``), a NaN guard and, with
    ``train.diagnose``, the gradient probe; then evaluates on the test split and writes
    ``summary.json``, plots and ``report.html``.

    Args:
        recipe: a validated :class:`~trainwell.config.Recipe`.
        out: the folder that holds run directories (default ``"runs"``).
        quiet: print nothing (default False).
        resume: a run directory to continue from its last checkpoint, in that same directory.
            Its ``recipe.toml`` must equal ``recipe`` (apart from the description) unless
            ``force``.
        callbacks: extra callbacks for the trainer.
        model: train this ``nn.Module`` instead of building ``[model]`` (default None).
        splits: use this :class:`~trainwell.data.Splits` instead of loading ``[data]``.
        run_name: name of the run directory (default ``recipe.name``).
        force: resume even when the recipes differ (the new recipe is saved; the old one is
            kept as ``recipe.before-resume.toml``).
        console: a ``rich.console.Console`` for the printed output (default: a new one).
        interrupt: on Ctrl-C, after saving the checkpoint and summary (status
            ``"interrupted"``): ``"raise"`` re-raises ``KeyboardInterrupt`` (default),
            ``"return"`` returns the :class:`RunResult`.

    Returns:
        :class:`RunResult` with ``summary["status"]`` one of completed, stopped, diverged,
        interrupted.

    Raises:
        ConfigError: a resume whose recipe differs (listing the fields), or a bad value.
        DataError, CheckpointError: unusable data or checkpoint.
    """
    locks: list[Any] = []
    try:
        return _fit_recipe(recipe, out=out, quiet=quiet, resume=resume, callbacks=callbacks,
                           model=model, splits=splits, run_name=run_name, force=force,
                           console=console, interrupt=interrupt, locks=locks)
    finally:
        for lock in locks:  # the run directory is free again, however fit ended
            lock.release()


def _fit_recipe(recipe: Recipe, *, out: str | os.PathLike, quiet: bool,
                resume: str | os.PathLike | None, callbacks: Sequence[Any], model: Any,
                splits: Any, run_name: str | None, force: bool, console: Any, interrupt: str,
                locks: list[Any]) -> RunResult:
    from trainwell.train import (
        EarlyStopping,
        HistoryLogger,
        ModelCheckpoint,
        NanGuard,
        ProgressCallback,
    )
    from trainwell.workflows.compose import build_from_recipe

    if interrupt not in ("raise", "return"):
        raise ConfigError("interrupt", interrupt, ["raise", "return"])
    if console is None and not quiet:
        from trainwell.console import make_console
        console = make_console()
    if quiet:
        console = None
    from trainwell.train import distributed, resolve_device
    from trainwell.train.precision import check_precision
    from trainwell.workflows.lrfind import record_lr_find, resolve_auto_max_lr, wants_auto_max_lr

    if recipe.train.tensorboard:  # a missing optional package: say so before any folder or step
        from trainwell.diagnose.tensorboard import require_tensorboard
        require_tensorboard()
    # the device and precision (fp16 on a CPU), and under torchrun the process group, first
    device = distributed.setup(resolve_device(recipe.train.device))
    check_precision(recipe.train.precision, device)
    main = distributed.is_main()
    if not main:  # under DDP rank 0 prints and writes; the other workers only train
        quiet, console = True, None
    if recipe.train.mlflow:
        from trainwell.report.tracking import require_mlflow
        require_mlflow()
    recipe = _absolute_data_path(recipe)
    if splits is None:  # before the run directory exists: bad data leaves no empty run behind
        from trainwell.workflows.compose import load_splits
        splits = load_splits(recipe, progress=not quiet)
    distributed.check_shards(len(splits.x_train), recipe.train.batch_size,
                             distributed.world_size())

    found = None
    if resume is not None:
        run_dir = resolve_run_dir(resume, field="--resume")
        if main:  # under DDP rank 0 holds it for the job
            locks.append(RunLock(run_dir).acquire())  # "RUN is in use by process N"
        saved = load_recipe(run_dir / "recipe.toml")
        if wants_auto_max_lr(recipe) and isinstance(saved.schedule.max_lr, float):
            # the run measured its peak rate once; resuming keeps that number
            recipe = recipe.model_copy(update={"schedule": recipe.schedule.model_copy(
                update={"max_lr": saved.schedule.max_lr})})
        diff = recipe_diff(saved, recipe, ignore=("description", "name"))
        if diff and not force:
            changes = ", ".join(f"{k} ({saved.flat()[k]!r} → {recipe.flat()[k]!r})" for k in diff)
            raise ConfigError("--resume", str(run_dir),
                              f"the recipe that run used; these fields differ: {changes}. "
                              "Resume without changes, or pass --force-resume to continue "
                              "with the new values")
        done = _epochs_trained(run_dir)
        if recipe.train.epochs < done or (recipe.train.epochs == done and "train.epochs" in diff):
            # fewer epochs than already trained would "complete" at once and train nothing
            raise ConfigError("train.epochs", recipe.train.epochs,
                              f"more than {done}: {run_dir} already trained {done} epoch"
                              f"{'s' if done != 1 else ''}; give a larger train.epochs to "
                              "continue")
        if not (run_dir / "checkpoints").is_dir():
            raise CheckpointError(f"{run_dir} has no checkpoints/ folder to resume from")
        if diff and main:  # a copy, then an atomic replace: recipe.toml exists at every moment
            atomic_write(run_dir / "recipe.before-resume.toml",
                         (run_dir / "recipe.toml").read_bytes())
            save_recipe(recipe, run_dir / "recipe.toml")
    else:
        if wants_auto_max_lr(recipe):  # before the run directory: a failure leaves nothing
            recipe, found = resolve_auto_max_lr(recipe, splits)
            if console is not None:
                console.print(f"LR finder: {found.sentence()}", markup=False)
        if main:
            run_dir = new_run_dir(out, run_name or recipe.name)
            locks.append(RunLock(run_dir).acquire())
            save_recipe(recipe, run_dir / "recipe.toml")  # with the numeric max_lr
            if found is not None:
                record_lr_find(run_dir, found)
            distributed.announce_run_dir(run_dir)
        run_dir = Path(distributed.broadcast_object(str(run_dir) if main else None))

    t = recipe.train
    cbs: list[Any] = [
        ProgressCallback(quiet=quiet),
        HistoryLogger(run_dir / "history.csv", run_dir / "history.json"),
        ModelCheckpoint(run_dir / "checkpoints", every_epochs=t.checkpoint_every_epochs,
                        every_steps=t.checkpoint_every_steps, monitor=t.monitor),
        NanGuard(),
    ]
    if t.early_stopping:
        cbs.append(EarlyStopping(monitor=t.monitor, patience=t.patience, min_delta=t.min_delta,
                                 restore_best=t.restore_best))
    probe = None
    if t.diagnose:
        from trainwell.diagnose import GradientProbe
        probe = GradientProbe(every=t.diagnose_every)
        cbs.append(probe)
    cbs.extend(callbacks)

    previous = read_summary(run_dir) if main else {}
    interrupted = False
    trainer = None
    try:
        splits, model, trainer = build_from_recipe(recipe, splits, model=model, callbacks=cbs,
                                                   progress=not quiet)
        if console is not None:
            from trainwell.nn import model_summary
            console.print(f"{recipe.name} → {run_dir}", markup=False, style="bold")
            if recipe.description:
                console.print(recipe.description, markup=False)
            held = getattr(splits, "test_held_out", 0.0)
            if held:  # the file had no test set: say where the test numbers come from
                console.print(f"test set: {100 * held:.0f} % of {splits.name} held out "
                              f"({len(splits.x_test)} examples; the file has no "
                              f"x_test/y_test)", markup=False, highlight=False)
            console.print(str(model_summary(model, splits.input_shape)), markup=False,
                          highlight=False)
        has_val = getattr(splits, "x_val", None) is not None and len(splits.x_val) > 0
        trainer.fit(splits.x_train, splits.y_train, epochs=t.epochs, batch_size=t.batch_size,
                    validation_data=(splits.x_val, splits.y_val) if has_val else None,
                    shuffle=t.shuffle, class_weight=class_weight_arg(t.class_weight),
                    resume_from=(run_dir / "checkpoints") if resume is not None else None)
    except KeyboardInterrupt:
        if trainer is None:  # nothing trained yet: nothing to keep
            if resume is None and main:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        interrupted = True
        if trainer._hard_interrupt:  # stopped mid-step: continue from what is on disk
            _back_to_last_checkpoint(trainer, run_dir / "checkpoints")
        trainer.status = "interrupted"
    except TrainwellError:
        # rejected before any step (bad value, data that does not fit the model): remove the
        # folder this call created, which holds nothing but its recipe.toml
        if main and resume is None and not (run_dir / "checkpoints").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if not main:  # rank 0 evaluates and writes the run directory
        summary = {"status": trainer.status, "run_dir": str(run_dir)}
        return RunResult(run_dir, trainer, model, splits, trainer.history, summary)
    # the time in fit of every part of the run, resumes (and SIGKILLed parts, up to their
    # last checkpoint) included
    extra = {"total_time": trainer.train_time,
             "checkpoint": latest_checkpoint(run_dir / "checkpoints")}
    if trainer.interrupt_signal is not None:
        import signal
        extra["interrupted_by"] = signal.Signals(trainer.interrupt_signal).name
    from trainwell.train.compile_cache import compile_summary
    extra["compile"] = compile_summary(trainer)
    summary = save_run_artifacts(run_dir, recipe=recipe, trainer=trainer, model=model,
                                 splits=splits, extra_summary=extra, report=probe is None)
    if resume is not None:
        summary["resumed"] = int(previous.get("resumed", 0)) + 1
        write_summary(run_dir, summary)
    if probe is not None:
        from trainwell.report.diagnostics import write_run_diagnostics
        write_run_diagnostics(probe, run_dir)
        write_report(run_dir)
        summary = read_summary(run_dir)
    if t.tensorboard:
        from trainwell.diagnose.tensorboard import write_history_tensorboard, write_tensorboard
        write_history_tensorboard(trainer.history.epochs, run_dir / "tensorboard")
        if probe is not None:
            write_tensorboard(probe.record(), run_dir / "tensorboard")
    if t.mlflow:
        from trainwell.report.tracking import log_run_to_mlflow
        summary["mlflow"] = log_run_to_mlflow(run_dir, t.mlflow_uri or None)
        write_summary(run_dir, summary)
        if console is not None:
            console.print(f"MLflow run {summary['mlflow']['run_id']} in "
                          f"{summary['mlflow']['uri']}", markup=False, highlight=False)

    result = RunResult(run_dir, trainer, model, splits, trainer.history, summary)
    if interrupted and interrupt == "raise":
        raise KeyboardInterrupt(f"training interrupted; resume with --resume {run_dir}")
    return result


def _back_to_last_checkpoint(trainer: Any, directory: Path) -> None:
    """After a second Ctrl-C/SIGTERM the model may hold a half-applied step: put back the
    state of the last checkpoint, so that the saved model and summary match it."""
    from trainwell.train.checkpoint import find_checkpoint

    try:
        _, state = find_checkpoint(directory)
    except CheckpointError:
        return
    status = trainer.status
    trainer.load_state_dict(state)
    trainer.status = status


# --------------------------------------------------------------------------- load
def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Read a run directory back: recipe, trained model (eval mode, CPU), summary.

    Raises:
        ConfigError: ``run_dir`` is not a run directory.
        CheckpointError: its model cannot be loaded.
    """
    from trainwell.nn import load_model, load_model_info
    from trainwell.workflows.compose import load_splits

    run = resolve_run_dir(run_dir)
    recipe = load_recipe(run / "recipe.toml")
    if not (run / "model" / "model.json").is_file():
        raise CheckpointError(f"{run} has no trained model (model/model.json); the run may "
                              "still be training or was interrupted before its end")
    info = load_model_info(run / "model")
    model = load_model(run / "model")

    def splits_loader() -> Any:
        try:
            return load_splits(recipe, progress=False)
        except DataError as exc:
            raise DataError(f"cannot reload the data of {run}: {exc}") from exc

    return LoadedRun(recipe, model, splits_loader, read_summary(run), run, info)
