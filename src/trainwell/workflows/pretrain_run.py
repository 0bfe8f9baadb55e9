"""A pretraining run: greedy layer-wise pretraining of a recipe's network on all its training
inputs, then a normal fit on the labels. ``trainwell pretrain`` is this function.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["pretrain_run"]


def pretrain_run(recipe: Any, *, epochs_per_layer: int = 5, optimizer: str = "adam",
                 lr: float = 1e-3, batch_size: int = 128, out: str | os.PathLike = "runs",
                 quiet: bool = False, console: Any = None) -> Any:
    """Greedy layer-wise pretraining on all training inputs, then ``fit_recipe`` on the labels.

    The unlabeled data are every training input of ``[data]`` (``train_limit`` ignored); the
    supervised phase uses ``[data]`` as written, so ``train_limit`` sets how few labels there
    are. Returns the :class:`~trainwell.workflows.run.RunResult`.
    """
    from trainwell.report.rundir import (
        add_summary_section,
        read_summary,
        write_report,
        write_summary,
    )
    from trainwell.workflows.compose import build_model_from_recipe, load_splits
    from trainwell.workflows.pretrain import check_pretrain_options, greedy_pretrain
    from trainwell.workflows.run import fit_recipe

    check_pretrain_options(epochs_per_layer, batch_size, lr)   # before the data load
    labelled = load_splits(recipe, progress=not quiet)
    if recipe.data.train_limit:
        everything = recipe.model_copy(update={"data": recipe.data.model_copy(
            update={"train_limit": 0})})
        unlabeled = load_splits(everything, progress=False).x_train
    else:
        unlabeled = labelled.x_train
    model = build_model_from_recipe(recipe, labelled)
    if console is not None:
        console.print(f"greedy layer-wise pretraining on {len(unlabeled)} unlabeled inputs, "
                      f"{epochs_per_layer} epochs per layer")
    result = greedy_pretrain(model, unlabeled, epochs_per_layer, batch_size=batch_size,
                             optimizer=optimizer, lr=lr, seed=recipe.train.seed,
                             device=recipe.train.device)
    if console is not None:
        for r in result.layers:
            console.print(f"  {r.name}: reconstruction MSE {r.initial_mse:.4g} → "
                          f"{r.final_mse:.4g}")
    run = fit_recipe(recipe, out=out, quiet=quiet, model=result.model, splits=labelled,
                     run_name=f"{recipe.name}-pretrained", console=console)
    add_summary_section(run.run_dir, "Greedy layer-wise pretraining", [
        ["layer", "autoencoder", "MSE before", "MSE after"], *result.table()],
        text=f"Each hidden layer was first trained as a shallow autoencoder (layer → linear "
             f"decoder, reconstruction MSE) on the codes of the layer below, on "
             f"{len(unlabeled)} unlabeled inputs, {epochs_per_layer} epochs per layer "
             f"({optimizer}, lr {lr:g}); then the whole network trained on "
             f"{len(labelled.y_train)} labelled inputs.")
    summary = read_summary(run.run_dir)  # the report's first lines say how it was trained
    summary["description"] = (
        f"Greedy layer-wise pretraining ({len(unlabeled)} unlabeled inputs, {epochs_per_layer} "
        f"epochs per layer), then training on {len(labelled.y_train)} labels."
        + (f" Recipe: {recipe.description}" if recipe.description else ""))
    summary["pretrain"] = {"unlabeled": len(unlabeled), "epochs_per_layer": epochs_per_layer,
                           "optimizer": optimizer, "lr": lr,
                           "layers": [list(r) for r in result.table()]}
    write_summary(run.run_dir, summary)
    write_report(run.run_dir)
    run.summary.update(summary)
    return run
