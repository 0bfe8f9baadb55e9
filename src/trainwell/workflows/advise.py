"""``advise``: read a finished run, say what is wrong and which changes to try.

:func:`advise_run` reads the run directory (history, summary, recipe, and the gradient-health
samples when the run was fitted with ``--diagnose`` — otherwise it probes the recipe for a few
hundred steps from fresh weights), runs the LR finder when the curves point to a learning rate
too low, and returns an :class:`Advice`: the findings of
:func:`trainwell.diagnose.advice.find_problems` and at most three proposals of
:func:`trainwell.diagnose.proposals.propose`. With ``write=True`` the run's ``summary.json``
gets the advice as data (``"advice"``) and an "Advice" section, and ``report.html`` is
rewritten to show it.

Example:
    >>> advice = advise_run("runs/20250101-120000-default")   # doctest: +SKIP
    >>> print(advice.text())                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.diagnose.advice import Finding, find_problems, wants_lr_finder
from trainwell.diagnose.proposals import Proposal, propose
from trainwell.errors import CheckpointError, ConfigError

__all__ = ["Advice", "advise_run", "check_run", "SECTION_TITLE"]

SECTION_TITLE = "Advice"
_RUN = "a run directory written by `trainwell fit`"


@dataclass
class Advice:
    """What :func:`advise_run` found in a run and the changes it proposes."""

    run_dir: Path
    recipe: Any
    findings: list[Finding]
    proposals: list[Proposal]
    status: str = "completed"
    epochs: int = 0
    diagnosis_source: str = "none"   # "fit" | "probe" | "none"
    diagnosis: dict[str, Any] | None = None
    lr_suggestion: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def alarming(self) -> list[Finding]:
        return [f for f in self.findings if f.alarming]

    def source_text(self) -> str:
        return {"fit": "gradient health from the probes recorded during the fit",
                "probe": "gradient health from a short probe run of the recipe (fresh weights)",
                }.get(self.diagnosis_source, "no gradient-health probe")

    def text(self) -> str:
        """Findings with evidence and confidence, then the proposals with their ``--set``
        lines and recipe diffs, as plain lines."""
        lines = self._header()
        if self.findings:
            lines.append("Findings:")
        for i, f in enumerate(self.findings, 1):
            tag = "" if f.alarming else " (note)"
            lines.append(f"{i}. {f.title}{tag} — confidence {f.confidence_word} "
                         f"({f.confidence:.2f})")
            lines += [f"   - {e}" for e in f.evidence]
        return "\n".join(lines + self._proposal_lines())

    def _header(self) -> list[str]:
        lines = [f"Advice for {self.run_dir} ({self.status}, {self.epochs} epochs; "
                 f"{self.source_text()})."]
        lines += self.notes
        if self.lr_suggestion is not None:
            lines.append(f"LR finder: suggested learning rate {self.lr_suggestion:.3g} "
                         f"(the run's peak rate: {_peak_lr(self.recipe):.3g}).")
        if not self.alarming:
            lines.append("No problem found: the curves, the learning rate and the gradient "
                         "flow look healthy.")
        return lines

    def _proposal_lines(self) -> list[str]:
        lines = []
        if self.proposals:
            lines.append("Proposed changes (try them side by side: trainwell advise RUN --try):")
        for i, p in enumerate(self.proposals, 1):
            lines.append(f"{i}. {p.title} — the chapter: {p.guideline}")
            lines.append(f"   {p.set_args()}")
            lines += ["   " + d for d in p.diff_text().split("\n")]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The advice as plain data (what ``--json`` prints)."""
        return {"run_dir": str(self.run_dir), "status": self.status, "epochs": self.epochs,
                "diagnosis_source": self.diagnosis_source,
                "network_verdict": (self.diagnosis or {}).get("network"),
                "borderline": (self.diagnosis or {}).get("borderline", []),
                "lr_finder_suggestion": self.lr_suggestion,
                "findings": [f.to_dict() for f in self.findings],
                "proposals": [p.to_dict() for p in self.proposals],
                "notes": self.notes}

    def section(self) -> tuple[list[list[Any]], str]:
        """The report section: a findings table and the proposals as text."""
        table: list[list[Any]] = [["finding", "confidence", "evidence"]]
        for f in self.findings:
            table.append([f.title + ("" if f.alarming else " (note)"),
                          f"{f.confidence_word} ({f.confidence:.2f})", "; ".join(f.evidence)])
        text = "\n".join(self._header() + self._proposal_lines())
        return (table if len(table) > 1 else []), text


def _peak_lr(recipe: Any) -> float:
    s = recipe.schedule
    return s.max_lr if s.name == "onecycle" and isinstance(s.max_lr, float) else recipe.optimizer.lr


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("RUN", str(path.parent), f"{_RUN} with a readable {what} "
                          f"({path.name} cannot be read: {reason})") from None


def check_run(run: str | os.PathLike) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """The run directory, its history rows and its summary — or one clear error.

    Raises:
        ConfigError: ``RUN`` is not a run directory, has no history, is still training, or
            its ``summary.json`` / ``history.json`` cannot be read.
    """
    p = Path(run)
    if not (p.is_dir() and (p / "recipe.toml").is_file()):
        raise ConfigError("RUN", str(run), f"{_RUN} (a folder holding recipe.toml)")
    hist = p / "history.json"
    if not hist.is_file():
        raise ConfigError("RUN", str(run), f"{_RUN} with a history (history.json is missing: "
                          "the run has not finished an epoch yet)")
    history = _read_json(hist, "history")
    if not isinstance(history, list) or not history:
        raise ConfigError("RUN", str(run), f"{_RUN} with at least one epoch in history.json")
    summ = p / "summary.json"
    if not summ.is_file():
        raise ConfigError("RUN", str(run), "a finished run: this one is still training (no "
                          "summary.json yet); wait for it to end, or resume it with "
                          "`trainwell fit --resume`")
    summary = _read_json(summ, "summary")
    if not isinstance(summary, dict):
        raise ConfigError("RUN", str(run), f"{_RUN} with a readable summary (summary.json "
                          "holds no JSON object)")
    done = summary.get("epochs_run")
    if isinstance(done, int) and len(history) > done:
        raise ConfigError("RUN", str(run), f"a finished run: this one is still training "
                          f"(history.json has {len(history)} epochs, summary.json {done})")
    return p, history, summary


def _saved_diagnosis(run: Path, summary: dict[str, Any]) -> dict[str, Any] | None:
    probes = run / "diagnostics" / "probes.npz"
    if probes.is_file():   # judged again: the verdict carries today's margins
        from trainwell.diagnose import ProbeRecord, judge

        try:
            return judge(ProbeRecord.load(probes)).to_dict()
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{probes} cannot be read: {exc}") from None
    saved = summary.get("diagnosis")
    return saved if isinstance(saved, dict) else None


def advise_run(run: str | os.PathLike, *, probe_steps: int = 300, lr_finder: bool = True,
               write: bool = True, splits: Any = None, limit: int = 3,
               progress: bool = False) -> Advice:
    """Findings and proposals for a finished run.

    Args:
        run: the run directory.
        probe_steps: steps of the gradient-health probe when the run has no saved probes
            (0 = no probe).
        lr_finder: run the LR finder when the curves suggest a learning rate too low.
        write: add the advice to the run's ``summary.json`` and ``report.html``.
        splits: the run's data, if already loaded (else loaded when a probe needs it).
        limit: at most this many proposals (default 3).
        progress: show the data loading progress.

    Raises:
        ConfigError: not a finished run directory with a history and a readable summary.
    """
    from trainwell.config import load_recipe

    path, history, summary = check_run(run)
    if isinstance(probe_steps, bool) or not isinstance(probe_steps, int) or probe_steps < 0:
        raise ConfigError("--probe-steps", probe_steps, "an integer ≥ 0 (0 = no probe)")
    recipe = load_recipe(path / "recipe.toml")
    notes = []
    if summary.get("status") == "interrupted":
        notes.append("The run was interrupted: the advice reads the epochs it finished.")
    diagnosis = _saved_diagnosis(path, summary)
    source = "fit" if diagnosis else "none"
    if diagnosis is None and probe_steps > 0:
        from trainwell.workflows.diagnose import diagnose

        if splits is None:
            splits = _load_splits(recipe, progress)
        diagnosis = diagnose(recipe, steps=probe_steps, splits=splits).diagnosis.to_dict()
        source = "probe"
    suggestion = None
    if lr_finder and wants_lr_finder(history):
        from trainwell.workflows.lrfind import lr_find_recipe

        if splits is None:
            splits = _load_splits(recipe, progress)
        found, _ = lr_find_recipe(recipe, splits=splits)
        suggestion = float(found.suggestion)
    findings = find_problems(history, summary, recipe, diagnosis, lr_suggestion=suggestion,
                             diagnosis_source=source)
    advice = Advice(path, recipe, findings, propose(findings, recipe, limit=limit),
                    status=str(summary.get("status", "completed")), epochs=len(history),
                    diagnosis_source=source, diagnosis=diagnosis, lr_suggestion=suggestion,
                    notes=notes)
    if write:
        write_advice(advice)
    return advice


def _load_splits(recipe: Any, progress: bool) -> Any:
    from trainwell.workflows.compose import load_splits

    return load_splits(recipe, progress=progress)


def write_advice(advice: Advice) -> None:
    """Put the advice into the run's ``summary.json`` (data and section) and ``report.html``."""
    from trainwell.report.rundir import (
        add_summary_section,
        read_summary,
        write_report,
        write_summary,
    )

    table, text = advice.section()
    add_summary_section(advice.run_dir, SECTION_TITLE, table or None, text)
    summary = read_summary(advice.run_dir)
    summary["advice"] = advice.to_dict()
    write_summary(advice.run_dir, summary)
    write_report(advice.run_dir)
