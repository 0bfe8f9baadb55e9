"""Per-class precision, recall and F1 and the confusion matrix of a classification run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["add_per_class"]


def add_per_class(summary: dict[str, Any], run: Path, model: Any, splits: Any, task: str,
                   *, draw: bool) -> None:
    """Per-class precision/recall/F1 and the confusion matrix (classification runs).

    Measured on the test split (the validation split when there is none); a section of
    ``summary.json`` (so the report shows the table) and ``plots/confusion_matrix.png``.
    """
    if task not in ("multiclass", "binary"):
        return
    part = next((p for p in ("test", "val") if getattr(splits, f"x_{p}", None) is not None
                 and len(getattr(splits, f"x_{p}")) > 0), None)
    if part is None:
        return
    from trainwell.train.metrics import confusion_matrix, per_class_table

    n_classes = int(getattr(splits, "n_outputs", 0) or 0) if task == "multiclass" else 2
    if n_classes < 2:
        return
    names = getattr(splits, "class_names", None)
    cm = confusion_matrix(model, getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}"),
                          task=task, n_classes=n_classes)
    table = per_class_table(cm, names)
    label = {"test": "test", "val": "validation"}[part]
    title = "Per-class metrics"
    summary["per_class"] = {"split": part, "table": table, "confusion_matrix": cm.tolist()}
    summary["sections"] = [s for s in summary.get("sections", []) if s.get("title") != title]
    summary["sections"].append({
        "title": title, "table": [table[0]] + [[r[0], *[round(v, 4) for v in r[1:4]], r[4]]
                                               for r in table[1:]],
        "text": f"On the {label} split ({int(cm.sum())} examples): precision = correct / "
                f"predicted as the class, recall = correct / examples of the class, F1 their "
                f"harmonic mean; plots/confusion_matrix.png shows where the errors go."})
    if draw:  # in the figure worker when one runs (trainwell fit)
        from trainwell.report import figure_worker

        figure_worker.draw("confusion_matrix", cm.tolist(),
                           None if names is None else [str(n) for n in names],
                           str(run / "plots" / "confusion_matrix.png"),
                           title=f"confusion matrix ({label})")
