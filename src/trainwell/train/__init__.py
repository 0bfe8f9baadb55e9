"""The training engine: Trainer, callbacks, checkpoints, history.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from trainwell.train import EarlyStopping, Trainer
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> t = Trainer(nn.Linear(4, 3), callbacks=[EarlyStopping(patience=2)])
    >>> _ = t.fit(x, y, epochs=3, validation_data=(x, y))
"""

from trainwell.train.batches import BatchIterator
from trainwell.train.callbacks import (
    EVENTS,
    Callback,
    CallbackList,
    CancelStep,
    EarlyStopping,
    HistoryLogger,
    NanGuard,
    ProgressCallback,
)
from trainwell.train.checkpoint import (
    ModelCheckpoint,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from trainwell.train.history import History
from trainwell.train.lr_finder import LRFinder
from trainwell.train.phases import PhaseSchedule, Unfreeze
from trainwell.train.rng import get_rng_state, seed_everything, set_rng_state
from trainwell.train.step import StepOutput, TrainStep, make_train_step
from trainwell.train.trainer import Trainer, resolve_device

__all__ = [
    "Trainer", "History", "BatchIterator", "resolve_device",
    "TrainStep", "StepOutput", "make_train_step", "CancelStep", "LRFinder",
    "Unfreeze", "PhaseSchedule",
    "Callback", "CallbackList", "EVENTS", "EarlyStopping", "NanGuard", "HistoryLogger",
    "ProgressCallback", "ModelCheckpoint", "save_checkpoint", "load_checkpoint",
    "find_checkpoint", "seed_everything", "get_rng_state", "set_rng_state",
]
