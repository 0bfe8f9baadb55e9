"""A transfer run: a trained run's layers under a new head for a recipe's task, trained in two
phases (frozen, then unfrozen with a reduced learning rate), written as a normal run directory
whose plots show both phases. ``trainwell transfer`` is this function.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["transfer_run"]


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _resized(splits: Any, model: Any, resize: bool) -> Any:
    from trainwell.workflows.transfer import check_input_shape, expected_input_shape

    parts = {}
    for p in ("train", "val", "test"):
        x = getattr(splits, f"x_{p}")
        if x is not None and len(x):
            parts[f"x_{p}"] = check_input_shape(model, x, resize=resize,
                                                where=f"{splits.name} {p} data")
    if not parts or all(parts[k] is getattr(splits, k) for k in parts):
        return splits
    return replace(splits, input_shape=tuple(expected_input_shape(model)), **parts)


def _source(source_run: str | os.PathLike) -> tuple[Any, str]:
    import warnings

    from trainwell.nn import SelfNormalizationWarning
    from trainwell.workflows.transfer import load_source_model

    path = Path(source_run)
    with warnings.catch_warnings():
        # Rebuilding a saved network repeats its construction warnings: not news here.
        warnings.simplefilter("ignore", SelfNormalizationWarning)
        if (path / "recipe.toml").is_file():
            from trainwell.workflows.run import load_run

            run = load_run(path)
            return run.model, run.recipe.name
        return load_source_model(path), path.name


def transfer_run(source_run: str | os.PathLike, recipe: Any, *, reuse: int | None = None,
                 frozen_epochs: int = 4, unfreeze: int | str = "all", lr_factor: float = 1.0,
                 resize: bool = False, out: str | os.PathLike = "runs", quiet: bool = False,
                 console: Any = None) -> tuple[Path, dict[str, Any]]:
    """Train ``recipe``'s task on top of ``source_run``'s network; return (run dir, summary).

    ``recipe.train.epochs`` is the total of both phases; phase 1 trains at
    ``recipe.optimizer.lr`` with the reused layers frozen, phase 2 at ``lr × lr_factor``.
    """
    import torch

    from trainwell.nn import model_summary
    from trainwell.report.artifacts import save_run_artifacts
    from trainwell.report.rundir import add_summary_section, new_run_dir, write_report
    from trainwell.train import EarlyStopping, HistoryLogger, NanGuard, ProgressCallback
    from trainwell.workflows.compose import (
        binary_from_two_classes,
        load_splits,
        resolved_task,
        trainer_kwargs,
    )
    from trainwell.workflows.transfer import (
        check_phases,
        fine_tune_trainers,
        plot_fine_tune,
        reuse_layers,
    )

    source, source_name = _source(source_run)
    splits = load_splits(recipe, progress=not quiet)
    task = resolved_task(recipe, splits)
    if task == "binary" and splits.task == "multiclass" and splits.n_outputs == 2:
        splits = binary_from_two_classes(splits)
    splits = _resized(splits, source, resize)
    n_outputs = 1 if task in ("binary", "regression") and splits.n_outputs <= 2 \
        else int(splits.n_outputs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.train.seed)       # the new head's initialization
        model = reuse_layers(source, n_outputs=n_outputs, task=task, reuse=reuse)
    # the phase options are checked before the run directory and the summary
    check_phases(frozen_epochs, recipe.train.epochs, recipe.optimizer.lr, lr_factor)
    run_dir = new_run_dir(out, f"{recipe.name}-on-{source_name}")
    if console is not None:
        from trainwell.workflows.transfer import freeze

        if frozen_epochs > 0:
            freeze(model)       # as in phase 1, so the summary counts the frozen parameters
        console.print(f"[bold]{recipe.name}[/bold] on the layers of {source_run} → {run_dir}")
        console.print(f"phase 1 (frozen reused layers), {_epochs(frozen_epochs)} at lr "
                      f"{recipe.optimizer.lr:g}:")
        console.print(str(model_summary(model, splits.input_shape)), markup=False,
                      highlight=False)
    kwargs = trainer_kwargs(recipe, splits)
    for key in ("task", "optimizer", "lr", "optimizer_params", "device", "seed"):
        kwargs.pop(key, None)
    o, t = recipe.optimizer, recipe.train
    has_val = splits.x_val is not None and len(splits.x_val) > 0
    phase2 = []
    if console is not None:
        from trainwell.train import Callback

        class _AnnouncePhase2(Callback):
            def on_fit_start(self, trainer: Any) -> None:
                what = "all hidden layers" if unfreeze == "all" else \
                    f"the top {unfreeze} hidden layers"
                console.print(f"phase 2 (unfrozen: {what}), "
                              f"{_epochs(t.epochs - frozen_epochs)} at lr {o.lr * lr_factor:g}:")

        phase2.append(_AnnouncePhase2())
    result = fine_tune_trainers(
        model, splits.x_train, splits.y_train, frozen_epochs=frozen_epochs, epochs=t.epochs,
        lr=o.lr, lr_factor=lr_factor, unfreeze=unfreeze,
        validation_data=(splits.x_val, splits.y_val) if has_val else None, optimizer=o.name,
        optimizer_params=dict(momentum=o.momentum, beta_1=o.beta_1, beta_2=o.beta_2, rho=o.rho,
                              epsilon=o.epsilon, weight_decay=o.weight_decay,
                              momentum_form=o.momentum_form),
        task=task, batch_size=t.batch_size, callbacks=[ProgressCallback(quiet=quiet), NanGuard()],
        unfrozen_callbacks=phase2 + ([EarlyStopping(
            monitor=t.monitor, patience=t.patience, min_delta=t.min_delta,
            restore_best=t.restore_best)] if t.early_stopping and has_val else []),
        seed=t.seed, device=t.device, **kwargs)
    history = result.history
    trainer = result.trainers[-1]              # one run: both phases in its history
    HistoryLogger(run_dir / "history.csv", run_dir / "history.json").write(history)
    info = {"source_run": str(source_run), "reused": model.trainwell_transfer["reused"],
            "frozen_epochs": frozen_epochs, "epochs": t.epochs, "unfreeze": unfreeze,
            "lr": o.lr, "lr_factor": lr_factor, "phase2_lr": o.lr * lr_factor,
            "resized": resize, "phase_switch_epoch": result.phase_switch_epoch}
    summary = save_run_artifacts(run_dir, recipe=recipe, trainer=trainer, model=model,
                                 splits=splits, extra_summary={"transfer": info}, report=False)
    plot_fine_tune(history, run_dir / "plots" / "transfer_phases.png",
                   title=f"{recipe.name} on {source_name}: frozen → unfrozen")
    add_summary_section(run_dir, "Transfer learning", [
        ["setting", "value"],
        ["source run", str(source_run)],
        ["reused layers", ", ".join(info["reused"])],
        ["phase 1 (frozen)", f"{frozen_epochs} epochs at lr {o.lr:g}, only the new output "
                             "layer trains"],
        ["phase 2 (unfrozen)", f"{t.epochs - frozen_epochs} epochs at lr {o.lr * lr_factor:g}, "
                               f"unfrozen: {unfreeze}"],
        ["inputs resized", "yes" if resize else "no"],
    ], text="The vertical line in transfer_phases.png marks the epoch where the reused layers "
            "were unfrozen and the learning rate reduced.")
    write_report(run_dir)
    from trainwell.report.rundir import read_summary

    return run_dir, read_summary(run_dir) or summary
