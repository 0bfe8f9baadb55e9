"""The probe's samples as arrays, the derived ratios and the per-layer summary table.

Derived quantities (per sample and layer l, with L the last, i.e. top, layer):

- ratio to last:  r_l = ‖∇W_l‖₂ / ‖∇W_L‖₂
- update/weight:  u_l = ‖W_l(after step) − W_l(before)‖₂ / ‖W_l(before)‖₂

A layer's summary value is the median over the *recent window* (the last half of the samples,
at least one): the state the network is in now, robust to one odd batch. Non-finite values
are counted over the whole run, since one NaN is enough to call the training unstable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["STAT_NAMES", "ProbeRecord", "LayerSummary", "summarize", "TABLE_HEADER", "table_rows"]

#: Columns of one layer's statistics in a sample, in order.
STAT_NAMES = ("act_mean", "act_std", "saturated", "dead", "grad_norm", "weight_norm",
              "update_norm", "act_min", "act_max", "act_sum_sq", "grad_min", "grad_max",
              "grad_sum", "grad_sum_sq", "act_nonfinite", "grad_nonfinite")
_COL = {name: i for i, name in enumerate(STAT_NAMES)}


@dataclass
class ProbeRecord:
    """All samples of one probe run.

    Attributes:
        steps: (S,) global training step of each sample.
        stats: (S, L, len(STAT_NAMES)) statistics, columns named by ``STAT_NAMES``.
        hists: (S, L, 2, bins) histogram counts of the observed outputs ([:, :, 0]) and of the
            weight gradients ([:, :, 1]); their ranges are ``act_min/act_max`` and
            ``grad_min/grad_max``.
        layers: display names (``hidden1`` … ``output``); modules: qualified module names;
        kinds: what each layer's activation is (``sigmoid``, ``tanh``, ``relu``, ``other``,
            ``none``); n_weights: weights per layer; every: sampling interval at the end.
    """

    steps: np.ndarray
    stats: np.ndarray
    hists: np.ndarray
    layers: list[str]
    modules: list[str]
    kinds: list[str]
    n_weights: np.ndarray
    every: int = 1
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def column(self, name: str) -> np.ndarray:
        """(S, L) values of one statistic (a name of ``STAT_NAMES``, ``ratio_to_last`` or
        ``update_ratio``)."""
        if name == "ratio_to_last":
            g = self.stats[:, :, _COL["grad_norm"]]
            with np.errstate(divide="ignore", invalid="ignore"):
                return g / g[:, -1:]
        if name == "update_ratio":
            with np.errstate(divide="ignore", invalid="ignore"):
                return self.stats[:, :, _COL["update_norm"]] / self.stats[:, :, _COL["weight_norm"]]
        return self.stats[:, :, _COL[name]]

    def window(self) -> slice:
        """The recent window: the last half of the regular samples (at least one). The final
        sample a diverged run adds at its end (``meta["post_mortem"]``, gradients only) is
        left out of the medians; its non-finite values still count."""
        n = len(self)
        if n > 1 and self.meta.get("post_mortem") is not None \
                and int(self.steps[-1]) == int(self.meta["post_mortem"]):
            n -= 1
        return slice(n - max(1, (n + 1) // 2), n)

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``probes.npz`` (arrays plus the names as JSON) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = json.dumps({"layers": self.layers, "modules": self.modules, "kinds": self.kinds,
                            "stat_names": list(STAT_NAMES), "every": self.every,
                            "meta": self.meta})
        np.savez_compressed(path, steps=self.steps, stats=self.stats.astype(np.float32),
                            hists=self.hists.astype(np.float32), n_weights=self.n_weights,
                            names=np.array(names))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProbeRecord:
        """Read a file written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as z:
            names = json.loads(str(z["names"]))
            stats = z["stats"].astype(np.float64)
            if names.get("stat_names", list(STAT_NAMES)) != list(STAT_NAMES):
                cols = [names["stat_names"].index(n) for n in STAT_NAMES]
                stats = stats[:, :, cols]
            return cls(steps=z["steps"], stats=stats, hists=z["hists"].astype(np.float64),
                       layers=names["layers"], modules=names["modules"], kinds=names["kinds"],
                       n_weights=z["n_weights"], every=int(names.get("every", 1)),
                       meta=names.get("meta", {}))


@dataclass
class LayerSummary:
    """One layer's statistics over the recent window (medians) and its non-finite count."""

    layer: str
    kind: str
    act_mean: float
    act_std: float
    saturated: float
    dead: float
    grad_norm: float
    ratio_to_last: float
    rms_ratio_to_last: float
    update_ratio: float
    grad_growth: float
    nonfinite: int


def _median(a: np.ndarray) -> np.ndarray:
    """Median over samples (axis 0) ignoring NaN; NaN where a column has no finite value."""
    out = np.full(a.shape[1:], np.nan)
    for j in range(a.shape[1]):
        col = a[:, j]
        col = col[np.isfinite(col)]
        if col.size:
            out[j] = np.median(col)
    return out


def summarize(record: ProbeRecord) -> list[LayerSummary]:
    """Per-layer medians over the recent window, plus the whole-run non-finite count.

    ``rms_ratio_to_last`` compares gradients per weight (‖∇W‖/√n), which removes the effect
    of layer size on the norm; ``grad_growth`` is the recent gradient norm over the first
    sample's (how much gradients have grown during training).
    """
    if len(record) == 0:
        return []
    w = record.window()
    grad = record.column("grad_norm")
    ratio = record.column("ratio_to_last")
    with np.errstate(divide="ignore", invalid="ignore"):
        rms = grad / np.sqrt(record.n_weights)[None, :]
        rms_ratio = rms / rms[:, -1:]
        growth = grad / grad[:1]
    # flags (0/1) per sample: NaN/Inf in the outputs, in the gradient, or in the weights
    nonfinite = (record.column("act_nonfinite") + record.column("grad_nonfinite")
                 + ~np.isfinite(record.column("weight_norm"))).sum(axis=0)
    med = {name: _median(record.column(name)[w]) for name in
           ("act_mean", "act_std", "saturated", "dead", "grad_norm", "update_ratio")}
    med_ratio, med_rms, med_growth = _median(ratio[w]), _median(rms_ratio[w]), _median(growth[w])
    return [LayerSummary(layer=record.layers[i], kind=record.kinds[i],
                         act_mean=float(med["act_mean"][i]), act_std=float(med["act_std"][i]),
                         saturated=float(med["saturated"][i]), dead=float(med["dead"][i]),
                         grad_norm=float(med["grad_norm"][i]), ratio_to_last=float(med_ratio[i]),
                         rms_ratio_to_last=float(med_rms[i]),
                         update_ratio=float(med["update_ratio"][i]),
                         grad_growth=float(med_growth[i]), nonfinite=int(np.nan_to_num(nonfinite[i], nan=1)))
            for i in range(len(record.layers))]


TABLE_HEADER = ["layer", "act mean", "act std", "saturated %", "dead %", "grad norm",
                "ratio to last", "update/weight", "verdict"]


def _fmt(x: float, kind: str = "g") -> str:
    if x != x:   # NaN: not applicable or not measured
        return "–"
    if kind == "%":
        return f"{100 * x:.1f}"
    if kind == "e":
        return f"{x:.2e}"
    return f"{x:.3g}"


def table_rows(summaries: list[LayerSummary], verdicts: list[str]) -> list[list[str]]:
    """The per-layer table as strings, columns as in :data:`TABLE_HEADER`."""
    return [[s.layer, _fmt(s.act_mean), _fmt(s.act_std), _fmt(s.saturated, "%"),
             _fmt(s.dead, "%"), _fmt(s.grad_norm, "e"), _fmt(s.ratio_to_last, "e"),
             _fmt(s.update_ratio, "e"), v] for s, v in zip(summaries, verdicts, strict=True)]
