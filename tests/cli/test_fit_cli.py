"""`trainwell fit`, `recipes`, `--version` and the error contract of the CLI."""

from __future__ import annotations

import html
import json
import subprocess
import sys

import annotated_types as at
import pytest

from trainwell import __version__
from trainwell.cli import app
from trainwell.config.fields import _choices_of
from trainwell.recipe import SECTIONS, builtin_recipes, loads_recipe, resolve

RUN_FILES = ["recipe.toml", "history.csv", "history.json", "checkpoints/last.pt",
             "checkpoints/best.pt", "checkpoints/manifest.json", "model/model.safetensors",
             "model/model.json", "summary.json", "plots/loss.png", "plots/accuracy.png",
             "plots/lr.png", "report.html"]


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"trainwell {__version__}"


def test_console_script_entry_point_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from trainwell.cli import main; main()",
                           "fit", "no_such_recipe"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: recipe: received 'no_such_recipe'")
    assert "Traceback" not in proc.stderr


def test_recipes_lists_every_builtin_with_description(runner):
    result = runner.invoke(app, ["recipes"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in builtin_recipes():
        assert name in result.stdout
    assert "Self-normalizing" in result.stdout


def test_recipes_show_prints_loadable_toml(runner):
    result = runner.invoke(app, ["recipes", "show", "selu"])
    assert result.exit_code == 0
    assert loads_recipe(result.stdout) == resolve("selu")
    resolved = runner.invoke(app, ["recipes", "show", "default", "--resolved"])
    assert "diagnose_every" in resolved.stdout  # defaults included
    bad = runner.invoke(app, ["recipes", "show", "nope"])
    assert bad.exit_code == 2 and "default" in bad.stderr


def test_fit_writes_every_file_of_the_run_directory(trained_run):
    for rel in RUN_FILES:
        assert (trained_run / rel).is_file(), rel
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert len(summary["epoch_times"]) == 3 == summary["epochs_run"]
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss",
                "test_loss"):
        assert key in summary["metrics"]["final"]
    assert set(summary["versions"]) >= {"trainwell", "torch", "python"}
    assert summary["seed"] == 0 and summary["device"] == "cpu"
    assert summary["parameters"]["total"] == 6 * 16 + 16 + 16 * 3 + 3
    assert summary["fit_note"]["verdict"] in ("overfitting", "generalization_gap",
                                              "still_improving", "underfitting", "good_fit")
    assert summary["fit_note"]["text"] in html.unescape((trained_run / "report.html").read_text())


def test_fit_prints_summary_table_and_run_dir_and_diagnoses(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--set", "train.epochs=1", "--seed", "3", "--diagnose",
                                 "--set", "train.diagnose_every=2"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (run,) = list(tmp_path.iterdir())
    assert str(run) in result.stdout
    assert "Total params" in result.stdout  # model summary printed at the start
    assert "test" in result.stdout and "accuracy" in result.stdout
    saved = loads_recipe((run / "recipe.toml").read_text())
    assert saved.train.seed == 3 and saved.train.epochs == 1 and saved.train.diagnose
    # --diagnose: the gradient probe's plots and section reach the report
    assert (run / "plots" / "gradient_norms.png").is_file()
    assert (run / "diagnostics").is_dir()
    assert "Gradient health" in (run / "report.html").read_text()


def test_diverging_fit_exits_1_naming_step_and_layer(runner, tiny_dir, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--quiet", "--set", "optimizer.name=sgd",
                                 "--set", "optimizer.lr=1e30", "--set", "schedule.name=constant"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: training diverged at step")
    # the layer where the first NaN/Inf appeared (forward) or where backpropagation produced it
    assert "appeared in the output of the layer holding 'hidden" in result.stderr \
        or "gradients first became NaN/Inf in" in result.stderr
    (run,) = list(tmp_path.iterdir())
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


def test_fit_never_overwrites_an_existing_run(runner, tiny_dir, tmp_path):
    for _ in range(2):
        result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                     "--quiet", "--set", "train.epochs=1"])
        assert result.exit_code == 0, result.output
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2 and runs[0] != runs[1]


def test_resume_refuses_a_changed_recipe_listing_the_fields(runner, trained_run, tiny_dir):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--resume",
                                 str(trained_run), "--set", "train.epochs=5",
                                 "--set", "optimizer.lr=0.01"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --resume")
    assert "train.epochs" in result.stderr and "optimizer.lr" in result.stderr
    assert "--force-resume" in result.stderr
    assert "Traceback" not in result.output


# ---- errors generated from the schema: exit 2, one line naming the field, no traceback -------
def _bad_overrides():
    cases = []
    for sec, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            path = f"{sec}.{name}"
            for m in info.metadata:
                if isinstance(m, at.Gt):
                    cases.append((path, m.gt))
                elif isinstance(m, at.Ge):
                    cases.append((path, m.ge - 1))
                elif isinstance(m, at.Lt):
                    cases.append((path, m.lt))
            if _choices_of(info) is not None:
                cases.append((path, "no_such_name"))
    cases += [("train.epoch", 3), ("model.hidden", "wide"), ("train.epochs", "ten")]
    return cases


@pytest.mark.parametrize("path,value", _bad_overrides())
def test_bad_value_at_the_cli_exits_2_naming_the_field(runner, tiny_dir, tmp_path, path, value):
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--out", str(tmp_path),
                                 "--set", f"{path}={value}"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: ")
    assert "expected" in result.stderr
    assert "Traceback" not in result.output and "pydantic" not in result.output
    assert not any(tmp_path.iterdir())  # nothing was started


def test_missing_data_file_is_a_clean_error(runner, tmp_path):
    result = runner.invoke(app, ["fit", "default", "--out", str(tmp_path), "--quiet",
                                 "--set", f"data.dataset={tmp_path / 'missing.npz'}"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "missing.npz" in result.stderr
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # no half-made run directory


def test_interrupted_fit_exits_130_and_says_how_to_resume(runner, tiny_dir, tmp_path,
                                                         monkeypatch):
    import trainwell.run as run_mod

    def fake_fit(recipe, **kwargs):
        assert kwargs["interrupt"] == "return"  # the CLI wants the result, not the exception
        return run_mod.RunResult(tmp_path / "r", None, None, None, [],
                                 {"name": "tiny", "status": "interrupted",
                                  "message": "interrupted", "metrics": {"final": {}}})

    monkeypatch.setattr(run_mod, "fit_recipe", fake_fit)
    result = runner.invoke(app, ["fit", str(tiny_dir / "tiny.toml"), "--quiet"])
    assert result.exit_code == 130
    assert f"trainwell fit --resume {tmp_path / 'r'}" in result.stderr


def test_cli_makes_openmp_threads_sleep_unless_the_user_chose(tmp_path):
    import os

    code = ("import sys, os, trainwell.cli\n"
            "print(os.environ.get('OMP_WAIT_POLICY', '-'), 'torch' in sys.modules)\n"
            "try:\n    trainwell.cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120).stdout.split()
    # set on import, before torch is loaded, so it takes effect
    assert out[:2] == ["PASSIVE", "False"] and out[-1] == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120).stdout.split()
    assert out[0] == "ACTIVE" and out[-1] == "ACTIVE"


def _python(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, env=env, timeout=120)


def test_python_api_gets_the_cli_threading_policy_on_import():
    r = _python("import os, trainwell, torch; print(os.environ['OMP_WAIT_POLICY'])",
                OMP_NUM_THREADS="2")
    assert r.stdout.split() == ["PASSIVE"] and "OMP_WAIT_POLICY" not in r.stderr


def test_torch_imported_first_warns_once_with_the_fix():
    code = "import torch, trainwell, importlib; importlib.reload(trainwell)"
    r = _python(code, OMP_NUM_THREADS="2")
    assert r.stderr.count("OMP_WAIT_POLICY=PASSIVE") >= 1
    assert "import trainwell before torch" in r.stderr
    # one thread never spins; a policy the user chose is kept: no warning
    assert "OMP_WAIT_POLICY" not in _python("import torch, trainwell",
                                            OMP_NUM_THREADS="1").stderr
    assert "OMP_WAIT_POLICY" not in _python("import torch, trainwell", OMP_NUM_THREADS="2",
                                            OMP_WAIT_POLICY="ACTIVE").stderr


def test_fit_help_says_openmp_threads_sleep(runner):
    result = runner.invoke(app, ["fit", "--help"])
    assert "OMP_WAIT_POLICY" in result.stdout
