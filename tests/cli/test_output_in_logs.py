"""Output outside a terminal (logs, CI, pipes): whole lines, one line per epoch, clear events."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import torch
from rich.console import Console
from torch import nn

from trainwell.console import make_console
from trainwell.train import Callback, EarlyStopping, ProgressCallback, Trainer


def test_a_non_tty_run_prints_every_path_and_hint_on_one_line(tiny_dir, tmp_path):
    out = tmp_path / ("a-rather-long-folder-name-for-the-runs-" * 3) / "experiments"
    env = {**os.environ, "TERM": "dumb"}
    env.pop("COLUMNS", None)
    r = subprocess.run([sys.executable, "-m", "trainwell", "fit", str(tiny_dir / "tiny.toml"),
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    assert len(str(run_dir)) > 120  # longer than any default width
    # the run folder appears whole on a line; no line ends inside it
    assert any(str(run_dir) in line for line in r.stdout.splitlines())
    for line in r.stdout.splitlines():
        for k in range(20, len(str(run_dir))):
            assert not line.endswith(str(run_dir)[:k]) or line.endswith(str(run_dir)), line
    epoch_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epoch_lines] == ["1/3", "2/3", "3/3"]  # one line per epoch


def test_console_outside_a_terminal_does_not_wrap_but_a_terminal_one_does():
    buf = io.StringIO()
    c = make_console(file=buf)
    c.print("x" * 300)
    assert buf.getvalue() == "x" * 300 + "\n"
    assert make_console(file=io.StringIO(), width=50).width == 50  # an explicit width is kept
    assert make_console(file=io.StringIO(), force_terminal=True).width != 400


class _Score(Callback):
    """Writes a score that is best at epoch 1, so EarlyStopping restores epoch 1's weights."""

    def on_epoch_end(self, t, epoch, logs):
        logs["score"] = float(epoch)


def _trainer(buf: io.StringIO, *callbacks: Callback) -> Trainer:
    console = Console(file=buf, width=80)
    return Trainer(nn.Sequential(nn.Linear(4, 3)), lr=0.05, device="cpu",
                   callbacks=[ProgressCallback(console=console), *callbacks])


def test_progress_says_which_weights_were_restored_and_where_it_resumes():
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    buf = io.StringIO()
    t = _trainer(buf, _Score(), EarlyStopping(monitor="score", mode="min", patience=2))
    t.fit(x, y, epochs=10, batch_size=16)
    assert t.epoch == 3
    assert "restored best weights from epoch 1" in buf.getvalue()
    assert "resuming" not in buf.getvalue()

    buf2 = io.StringIO()
    t2 = _trainer(buf2)
    t2.fit(x, y, epochs=1, batch_size=16)
    t2.fit(x, y, epochs=1, batch_size=16)
    assert "resuming at epoch 2, step 4" in buf2.getvalue()
    assert "restored" not in buf2.getvalue()


def test_a_file_without_a_test_set_says_how_much_was_held_out(runner, tmp_path):
    import numpy as np

    from trainwell.cli import app

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(200, 4)).astype(np.float32),
             y=rng.integers(0, 2, 200))
    (tmp_path / "r.toml").write_text(f'name = "r"\n[data]\ndataset = "{tmp_path / "d.npz"}"\n'
                                     'validation = 20\n[train]\nepochs = 1\ndevice = "cpu"\n')
    result = runner.invoke(app, ["fit", str(tmp_path / "r.toml"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "test set: 20 % of d held out (40 examples" in result.stdout
    report = next(tmp_path.glob("*-r/report.html")).read_text()
    assert "the test set is 20 % of the file" in report
