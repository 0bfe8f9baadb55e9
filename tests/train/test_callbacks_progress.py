"""The progress bar keeps the step count and the time left whole on a narrow terminal."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from trainwell.train.callbacks import ProgressCallback

LONG_METRICS = {"loss": 0.412345, "accuracy": 0.87654, "val_loss": 0.423456,
                "val_accuracy": 0.8612345, "lr": 0.0123456, "grad_norm": 1.2345,
                "top5_accuracy": 0.99}


@pytest.mark.parametrize("width", [80, 100, 120])
def test_count_and_time_left_stay_whole_and_metrics_end_in_ellipsis(width):
    console = Console(width=width, record=True, force_terminal=True, file=io.StringIO())
    cb = ProgressCallback(console=console, refresh_every=1)
    t = SimpleNamespace(epochs=30, steps_per_epoch=4300, batch_in_epoch=0)
    cb.on_fit_start(t)
    try:
        cb._last = dict(LONG_METRICS)
        cb.on_epoch_start(t, 12)
        for step in range(430):
            cb.on_batch_end(t, step)
        renderable = cb._progress.get_renderable()
    finally:
        cb.on_fit_end(t)
    out = Console(width=width, record=True, force_terminal=True, file=io.StringIO())
    out.print(renderable)
    line = out.export_text().rstrip("\n")
    assert "\n" not in line and len(line) <= width
    assert line.startswith("epoch 12/30 ")
    # count, elapsed and time left whole, then the metrics (cut with "…" where they overflow)
    assert re.search(r" 430/4300 \d+:\d\d:\d\d (\d+:\d\d:\d\d|-:--:--) loss 0\.4123 ", line), line
    assert line.endswith("…")
