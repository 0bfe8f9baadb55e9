"""Gradient health: probes, verdicts, plots and TensorBoard logging.

See vanishing/exploding gradients, dead and saturated units per layer, and get the chapter's
remedies:

>>> from trainwell.diagnose import diagnose
>>> result = diagnose("diagnose_vanishing_sigmoid", steps=300)   # doctest: +SKIP
>>> print(result.diagnosis)                                       # doctest: +SKIP

During ``fit``, ``train.diagnose = true`` adds a :class:`GradientProbe` and
:func:`trainwell.report.diagnostics.write_run_diagnostics` puts its samples, plots and verdict
into the run directory. ``diagnose`` (the driver that trains a recipe or a module with a probe)
lives in :mod:`trainwell.workflows.diagnose`; it is still importable from here.
"""

from trainwell import _moved
from trainwell.diagnose.plots import plot_activation_std, plot_diagnostics, plot_gradient_heatmap
from trainwell.diagnose.probes import GradientProbe, ProbedLayer, find_layers
from trainwell.diagnose.stats import LayerSummary, ProbeRecord, summarize
from trainwell.diagnose.tensorboard import write_tensorboard
from trainwell.diagnose.verdicts import (
    DYING,
    EXPLODING,
    HEALTHY,
    REMEDIES,
    SATURATING,
    VANISHING,
    Diagnosis,
    LayerVerdict,
    Thresholds,
    judge,
)

__all__ = [
    "GradientProbe", "ProbedLayer", "find_layers", "ProbeRecord", "LayerSummary", "summarize",
    "judge", "Diagnosis", "LayerVerdict", "Thresholds", "REMEDIES",
    "HEALTHY", "VANISHING", "EXPLODING", "DYING", "SATURATING",
    "diagnose", "DiagnoseResult", "write_run_diagnostics",
    "plot_gradient_heatmap", "plot_activation_std", "plot_diagnostics", "write_tensorboard",
]

__getattr__ = _moved.forward(__name__)  # diagnose, DiagnoseResult, write_run_diagnostics
