"""The engine on the real data: the chapter's self-normalizing network learns Fashion-MNIST.

Skipped when $TRAINWELL_DATA has no fashion-mnist folder.
"""

import os
from pathlib import Path

import pytest
import torch

from trainwell.data import load_dataset
from trainwell.nn import build_model
from trainwell.train import Trainer

ROOT = os.environ.get("TRAINWELL_DATA", "")
pytestmark = [pytest.mark.realdata, pytest.mark.skipif(
    not ROOT or not (Path(ROOT) / "fashion-mnist").is_dir(),
    reason="needs $TRAINWELL_DATA/fashion-mnist")]


def test_selu_300_100_reaches_087_validation_accuracy_in_a_few_epochs():
    torch.manual_seed(0)
    splits = load_dataset("fashion_mnist", download=False, progress=False)  # standardized
    model = build_model(input_shape=splits.input_shape, n_outputs=10, hidden=[300, 100],
                        activation="selu")  # lecun init chosen automatically (Table 11-1)
    trainer = Trainer(model, task="multiclass", optimizer="nadam", lr=5e-4, seed=0)
    history = trainer.fit(splits.x_train, splits.y_train, epochs=5, batch_size=32,
                          validation_data=(splits.x_val, splits.y_val))
    best = max(row["val_accuracy"] for row in history.epochs)
    assert best >= 0.87, history.epochs
