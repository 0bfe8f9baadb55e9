"""trainwell: train deep neural networks well.

Every practice of "Training Deep Neural Networks" — initialization, nonsaturating activations,
batch norm, gradient clipping, transfer learning, fast optimizers, learning-rate schedules,
l1/l2, dropout, MC dropout, max-norm, early stopping, tuning — on PyTorch, with a diagnosis of
gradient health and side-by-side reports.

Example:
    >>> from trainwell import build_model, Trainer, load_dataset
    >>> splits = load_dataset("fashion_mnist")                        # doctest: +SKIP
    >>> model = build_model(input_shape=splits.input_shape, n_outputs=10,
    ...                     hidden=[300, 100], activation="elu")     # doctest: +SKIP
    >>> Trainer(model, optimizer="nadam", lr=1e-3).fit(
    ...     splits.x_train, splits.y_train, epochs=5,
    ...     validation_data=(splits.x_val, splits.y_val))          # doctest: +SKIP

The public names below are imported on first use, so ``import trainwell`` stays quick.

Importing trainwell sets ``OMP_WAIT_POLICY=PASSIVE`` (as the ``trainwell`` command does)
unless the variable is already set: torch's OpenMP threads then sleep instead of spinning
while they wait, which on a busy or small CPU makes training many times faster. OpenMP reads
the variable once, when torch is first imported; when torch was imported before trainwell
(and uses more than one thread), trainwell warns once with the one-line fix.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

from trainwell import _moved

__version__ = "0.1.0"


def _threading_policy() -> None:
    """Let OpenMP threads sleep while waiting (the CLI's policy), or say how when too late."""
    if "OMP_WAIT_POLICY" in os.environ:
        return  # the user's choice (e.g. ACTIVE on an idle machine) is kept
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when torch loads OpenMP
        return
    get_threads = getattr(torch, "get_num_threads", None)
    if get_threads is not None and get_threads() > 1:
        from trainwell.errors import TrainwellRuntimeWarning

        warnings.warn(
            "torch was imported before trainwell, so its threads spin while they wait; on a "
            "busy or small CPU training can be 10-20x slower. Fix: import trainwell before "
            "torch, or start Python with OMP_WAIT_POLICY=PASSIVE (set OMP_WAIT_POLICY=ACTIVE "
            "to keep spinning and silence this).", TrainwellRuntimeWarning, stacklevel=3)


_threading_policy()

_moved.install()  # old module paths (trainwell.config, trainwell.workflows.run, ...) keep working

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "TrainwellError": "trainwell.errors",
    "ConfigError": "trainwell.errors",
    "DataError": "trainwell.errors",
    "CheckpointError": "trainwell.errors",
    "TrainwellWarning": "trainwell.errors",
    # networks
    "build_model": "trainwell.nn",
    "model_summary": "trainwell.nn",
    "save_model": "trainwell.nn",
    "load_model": "trainwell.nn",
    "load_weights": "trainwell.nn",
    "clone_model": "trainwell.nn",
    "mc_dropout_mode": "trainwell.nn",
    "apply_max_norm": "trainwell.nn",
    "fold_batch_norm": "trainwell.nn",
    "ACTIVATIONS": "trainwell.nn",
    "INITIALIZERS": "trainwell.nn",
    # optimization
    "OPTIMIZERS": "trainwell.optim",
    "SCHEDULES": "trainwell.optim",
    "make_optimizer": "trainwell.optim",
    "make_schedule": "trainwell.optim",
    "schedule_curve": "trainwell.optim",
    "plot_schedule": "trainwell.optim",
    "clip_gradients": "trainwell.optim",
    "kernel_penalty": "trainwell.optim",
    # data
    "DATASETS": "trainwell.data",
    "load_dataset": "trainwell.data",
    "transfer_split": "trainwell.data",
    "Splits": "trainwell.data",
    # tasks and training
    "TASKS": "trainwell.tasks",
    "get_task": "trainwell.tasks",
    "Trainer": "trainwell.train",
    "Callback": "trainwell.train",
    "EarlyStopping": "trainwell.train",
    "ModelCheckpoint": "trainwell.train",
    "History": "trainwell.train",
    "NanGuard": "trainwell.train",
    "HistoryLogger": "trainwell.train",
    "ProgressCallback": "trainwell.train",
    "BatchIterator": "trainwell.train",
    "make_train_step": "trainwell.train.step",
    # shipping and uncertainty
    "export_model": "trainwell.export",
    "mc_predict": "trainwell.workflows.uncertainty",
    "calibration": "trainwell.workflows.uncertainty",
    "evaluate_uncertainty": "trainwell.workflows.uncertainty",
    # fine-tuning
    "find_lr": "trainwell.workflows.lrfind",
    "run_comparison": "trainwell.studies.compare",
    "run_study": "trainwell.studies.tune",
    # gradient health
    "GradientProbe": "trainwell.diagnose",
    "diagnose": "trainwell.workflows.diagnose",
    # transfer learning
    "reuse_layers": "trainwell.workflows.transfer",
    "freeze": "trainwell.workflows.transfer",
    "unfreeze": "trainwell.workflows.transfer",
    "fine_tune": "trainwell.workflows.transfer",
    "greedy_pretrain": "trainwell.workflows.pretrain",
    # recipes and runs
    "Recipe": "trainwell.config",
    "load_recipe": "trainwell.config",
    "save_recipe": "trainwell.config",
    "resolve_recipe": "trainwell.config",
    "apply_overrides": "trainwell.config",
    "build_from_recipe": "trainwell.workflows.compose",
    "fit_recipe": "trainwell.workflows.run",
    "load_run": "trainwell.workflows.run",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainwell' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
