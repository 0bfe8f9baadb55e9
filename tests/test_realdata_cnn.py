"""The built-in `fashion_cnn` recipe on the real Fashion-MNIST (skipped without the data).

The full recipe (8 epochs) reaches 0.92; this test-sized run trains 3 epochs (the 1cycle
schedule shrinks with them) and must reach 0.90 test accuracy.
"""

import os
from pathlib import Path

import pytest

ROOT = os.environ.get("TRAINWELL_DATA", "")
pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.skipif(
    not ROOT or not (Path(ROOT) / "fashion-mnist").is_dir(),
    reason="needs $TRAINWELL_DATA/fashion-mnist")]


def test_fashion_cnn_reaches_090_test_accuracy_in_three_epochs(tmp_path):
    from trainwell.config import apply_overrides, resolve
    from trainwell.workflows.run import fit_recipe

    recipe = apply_overrides(resolve("fashion_cnn"), ["train.epochs=3", "train.device=cpu",
                                                      "train.checkpoint_every_epochs=0"])
    result = fit_recipe(recipe, out=tmp_path, quiet=True)
    final = result.summary["metrics"]["final"]
    assert final["test_accuracy"] >= 0.90, final
