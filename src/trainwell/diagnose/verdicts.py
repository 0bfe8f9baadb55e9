"""Gradient-health verdicts per layer and for the network, each with the chapter's remedies.

A layer gets every flag whose rule it meets (most severe first); the network's verdict is
the most severe flag found clearly (outside the borderline band, below) in any layer, and it
lists every problem found. The rules read the
per-layer summary of :func:`trainwell.diagnose.stats.summarize` (medians over the recent half
of the samples; non-finite values over the whole run):

========== ======================================================================
exploding  any non-finite activation, gradient or weight; or update/weight > 0.1;
           or per-weight gradient > 100 × the top layer's; or gradient norm grown
           > 100 × since the first sample
vanishing  ‖∇W_l‖ < 0.01 × ‖∇W_top‖
dying      > 50 % of a ReLU layer's units output 0 for the whole batch
saturating > 25 % of a sigmoid/tanh layer's outputs in its flat tails
healthy    none of the above
========== ======================================================================

Margins and ``borderline``: every rule's measured value is kept with its *margin* to the
threshold — in percentage points for the dead/saturated fractions, in decades (log10 of the
ratio) for the gradient and update ratios, positive past the threshold. A value within the
rule's band (±8 points dead, ±4 points saturated, a factor 1.5 for the ratios) is
``borderline``: a longer probe or another seed can tip it either way. Only problems found
clearly (past the threshold and outside the band) in some layer make the network's verdict;
problems found only near their threshold are listed as ``borderline`` instead. The bands come
from probing the ``diagnose_*`` demonstrations for 150, 300 and 600 steps: a stable network's
most-dead layer moved by up to 6 points (54 %, 48 %, 34 % in ``diagnose_he_relu``), and the
medians of the gradient and update ratios moved by less than a factor 1.5 between lengths.

Why these thresholds:

- *vanishing, 1e-2*: Glorot & Bengio's condition for a trainable deep network is that the
  gradients keep the same variance from layer to layer. Plain SGD then moves every layer at a
  similar pace; a layer whose gradient is 100× smaller than the top layer's learns 100× slower
  at the same learning rate — it is effectively frozen. The norm ratio is conservative: lower
  layers usually hold *more* weights, which makes their norm larger for the same per-weight
  gradient. Healthy networks (He + ReLU/ELU, SELU + LeCun, sigmoid + batch norm, 20–30
  layers) measure 0.3–6 in every layer; sigmoid networks of the same depth with N(0, 1)
  weights measure 1e-4–1e-3 in their lowest layers.
- *exploding*: one NaN/Inf ends training (the chapter: "training will diverge"). An update of
  more than 10 % of a layer's weights in one step (update/weight > 0.1, against the ~1e-3 of a
  well-tuned run) rewrites the layer in about ten steps: the learning rate is too high. The
  per-weight gradient (‖∇W‖/√n, free of layer size) growing 100× from the top to a lower
  layer, or a layer's gradient growing 100× during training, is the multiplication by "say
  10, multiple times" that the chapter describes.
- *dying, 50 %*: a ReLU unit that is ≤ 0 for every example gets no gradient (dying ReLUs); a
  He-initialized ReLU network has a few such units per batch, but when more than half of a
  layer is dead it has lost most of its capacity and blocks most of the gradient below it.
- *saturating, 25 %*: a sigmoid output below 0.01 or above 0.99 (tanh |y| > 0.99) passes
  less than 4 % (2 %) of the activation's largest derivative. A healthy sigmoid/tanh layer
  (Glorot init, or batch norm) has ~0 % there; with N(0, 1) weights 20–50 % of the outputs
  are, and a quarter of the signal carrying almost no gradient is already a clear sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainwell.diagnose.stats import (
    TABLE_HEADER,
    LayerSummary,
    ProbeRecord,
    summarize,
    table_rows,
)

__all__ = ["HEALTHY", "VANISHING", "EXPLODING", "DYING", "SATURATING", "SEVERITY",
           "REMEDIES", "Thresholds", "Margin", "LayerVerdict", "Diagnosis", "judge"]

HEALTHY, VANISHING, EXPLODING, DYING, SATURATING = (
    "healthy", "vanishing", "exploding", "dying", "saturating")
#: Most severe first: the network verdict is the first of these that any layer has.
SEVERITY = (EXPLODING, VANISHING, DYING, SATURATING)

#: One or two lines of remedies from the chapter per problem, with the recipe setting to change.
REMEDIES = {
    EXPLODING: "Clip the gradients (optimizer.clip_norm=1.0 or clip_global_norm=1.0) and lower "
               "the learning rate (optimizer.lr ÷ 10);\nHe/LeCun initialization "
               "(model.init=auto) and batch normalization (model.batch_norm=before) keep the "
               "signal's scale.",
    VANISHING: "Initialize with He (ReLU family, ELU) or LeCun (SELU) instead of N(0, 1) "
               "(model.init=auto), use a nonsaturating activation\n(model.activation=elu, "
               "leaky_relu or selu), or add batch normalization (model.batch_norm=before).",
    DYING: "Use a ReLU variant that cannot die: leaky ReLU, ELU or SELU "
           "(model.activation=leaky_relu);\nlower the learning rate (large steps push units "
           "into the zero region) and keep He initialization.",
    SATURATING: "Use a nonsaturating activation (model.activation=relu, elu or selu) or batch "
                "normalization before the activation\n(model.batch_norm=before); sigmoid/tanh "
                "need Glorot initialization (model.init=glorot), not N(0, 1).",
}


@dataclass(frozen=True)
class Thresholds:
    """The verdict thresholds (see the module docstring for why each value).

    Args:
        vanishing_ratio: ‖∇W_l‖/‖∇W_top‖ below this → vanishing. Default 1e-2.
        exploding_update: update/weight ratio above this → exploding. Default 0.1.
        exploding_rms_ratio: per-weight gradient ratio to the top layer above this →
            exploding. Default 100.
        exploding_growth: gradient-norm growth since the first sample above this → exploding.
            Default 100.
        dead: dead-unit fraction above this → dying. Default 0.5.
        saturated: saturated-output fraction above this → saturating. Default 0.25.
        dead_band, saturated_band: a fraction within this many points (as a fraction) of its
            threshold is borderline. Defaults 0.08 and 0.04.
        ratio_band: a ratio within this factor of its threshold is borderline. Default 1.5.
    """

    vanishing_ratio: float = 1e-2
    exploding_update: float = 0.1
    exploding_rms_ratio: float = 100.0
    exploding_growth: float = 100.0
    dead: float = 0.5
    saturated: float = 0.25
    dead_band: float = 0.08
    saturated_band: float = 0.04
    ratio_band: float = 1.5


def _gt(x: float, limit: float) -> bool:
    return not math.isnan(x) and x > limit


@dataclass(frozen=True)
class Margin:
    """One rule's measured value against its threshold.

    Attributes:
        rule: ``dead``, ``saturated``, ``ratio_to_last``, ``update_ratio``,
            ``rms_ratio_to_last``, ``grad_growth`` or ``nonfinite``.
        value, threshold: the measured value and the rule's threshold.
        margin: how far past the threshold the value is (negative: short of it) — points of
            a fraction (0.04 = 4 points) for ``dead``/``saturated``, decades (log10) for the
            ratios; ``inf`` for non-finite values.
        band: the borderline band in the same unit.
    """

    rule: str
    value: float
    threshold: float
    margin: float
    band: float

    @property
    def borderline(self) -> bool:
        return math.isfinite(self.margin) and abs(self.margin) < self.band

    def words(self) -> str:
        """e.g. "4 points above the 50% threshold" or "a factor 1.3 below the 0.01 threshold"."""
        past = self.margin >= 0
        if self.rule in ("dead", "saturated"):
            pts = abs(self.margin) * 100
            return (f"{pts:.1f}" if pts < 1 else f"{pts:.0f}") + \
                (f" points {'above' if past else 'below'} the "
                    f"{self.threshold * 100:.0f}% threshold")
        if not math.isfinite(self.margin):
            return "non-finite"
        side = ("below" if past else "above") if self.rule == "ratio_to_last" \
            else ("above" if past else "below")
        return f"a factor {10 ** abs(self.margin):.2g} {side} the {self.threshold:g} threshold"

    def to_dict(self) -> dict:
        def num(x: float) -> float | str | None:
            return None if math.isnan(x) else (x if math.isfinite(x) else
                                               "inf" if x > 0 else "-inf")

        return {"rule": self.rule, "value": num(self.value), "threshold": self.threshold,
                "margin": num(self.margin), "band": self.band, "borderline": self.borderline}


@dataclass
class LayerVerdict:
    """A layer's flags (most severe first; empty = healthy), why each was raised, and the
    margin of every rule that applies to the layer (``margins[problem]``: the deciding rule)."""

    layer: str
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    margins: dict[str, Margin] = field(default_factory=dict)

    @property
    def borderline(self) -> list[str]:
        """Problems whose deciding value is within its band of the threshold (either side)."""
        return [p for p in SEVERITY if p in self.margins and self.margins[p].borderline]

    @property
    def clear(self) -> list[str]:
        """Flags past their threshold and outside the band."""
        return [f for f in self.flags if f not in self.borderline]

    @property
    def verdict(self) -> str:
        near = [p for p in self.borderline if p not in self.flags]
        text = ", ".join(f + (" (borderline)" if f in self.borderline else "")
                         for f in self.flags) if self.flags else HEALTHY
        return text + (f" (near {', '.join(near)})" if near else "")


def _log_margin(value: float, threshold: float, above: bool) -> float:
    if math.isnan(value):
        return math.nan
    if value <= 0:
        return -math.inf if above else math.inf
    if math.isinf(value):
        return math.inf if above else -math.inf
    m = math.log10(value / threshold)
    return m if above else -m


def _margins(s: LayerSummary, th: Thresholds) -> dict[str, Margin]:
    """The deciding margin of each problem that can be measured in this layer."""
    band = math.log10(th.ratio_band)
    out: dict[str, Margin] = {}
    if s.nonfinite:
        out[EXPLODING] = Margin("nonfinite", float(s.nonfinite), 0.0, math.inf, band)
    else:
        rules = [Margin(r, v, t, _log_margin(v, t, True), band) for r, v, t in (
            ("update_ratio", s.update_ratio, th.exploding_update),
            ("rms_ratio_to_last", s.rms_ratio_to_last, th.exploding_rms_ratio),
            ("grad_growth", s.grad_growth, th.exploding_growth)) if not math.isnan(v)]
        if rules:
            out[EXPLODING] = max(rules, key=lambda m: m.margin)
    if not math.isnan(s.ratio_to_last):
        out[VANISHING] = Margin("ratio_to_last", s.ratio_to_last, th.vanishing_ratio,
                                _log_margin(s.ratio_to_last, th.vanishing_ratio, False), band)
    if not math.isnan(s.dead):
        out[DYING] = Margin("dead", s.dead, th.dead, s.dead - th.dead, th.dead_band)
    if not math.isnan(s.saturated):
        out[SATURATING] = Margin("saturated", s.saturated, th.saturated,
                                 s.saturated - th.saturated, th.saturated_band)
    return out


def _judge_layer(s: LayerSummary, th: Thresholds) -> LayerVerdict:
    found: dict[str, str] = {}
    if s.nonfinite:
        found[EXPLODING] = "NaN/Inf in its activations, gradients or weights " \
                           f"({s.nonfinite}× in the samples)"
    elif _gt(s.update_ratio, th.exploding_update):
        found[EXPLODING] = f"update/weight {s.update_ratio:.2g} > {th.exploding_update:g} per step"
    elif _gt(s.rms_ratio_to_last, th.exploding_rms_ratio):
        found[EXPLODING] = f"per-weight gradient {s.rms_ratio_to_last:.2g}× the top layer's " \
                           f"(> {th.exploding_rms_ratio:g})"
    elif _gt(s.grad_growth, th.exploding_growth):
        found[EXPLODING] = f"gradient norm grew {s.grad_growth:.2g}× during training " \
                           f"(> {th.exploding_growth:g})"
    if not math.isnan(s.ratio_to_last) and s.ratio_to_last < th.vanishing_ratio:
        found[VANISHING] = f"gradient norm {s.ratio_to_last:.2g}× the top layer's " \
                           f"(< {th.vanishing_ratio:g})"
    if _gt(s.dead, th.dead):
        found[DYING] = f"{100 * s.dead:.0f}% of its units are dead (> {100 * th.dead:.0f}%)"
    if _gt(s.saturated, th.saturated):
        found[SATURATING] = f"{100 * s.saturated:.0f}% of its outputs are saturated " \
                            f"(> {100 * th.saturated:.0f}%)"
    flags = [f for f in SEVERITY if f in found]
    return LayerVerdict(s.layer, flags, [found[f] for f in flags], _margins(s, th))


_RULE_WORDS = {"dead": "dead units", "saturated": "saturated outputs",
               "ratio_to_last": "gradient norm / top layer's", "update_ratio": "update/weight",
               "rms_ratio_to_last": "per-weight gradient / top layer's",
               "grad_growth": "gradient growth"}


@dataclass
class Diagnosis:
    """The verdicts of one probe record.

    Attributes:
        network: the network's verdict: the most severe problem found clearly (past its
            threshold and outside the borderline band) in some layer, or ``"healthy"``.
        problems: every problem found clearly, most severe first.
        borderline: problems found only within their band of the threshold (either side) —
            a longer probe or another seed can tip them either way.
        layers: the per-layer summaries; verdicts: the per-layer verdicts (same order).
        steps: number of samples and the training steps they cover.
    """

    network: str
    problems: list[str]
    layers: list[LayerSummary]
    verdicts: list[LayerVerdict]
    steps: tuple[int, int, int] = (0, 0, 0)
    thresholds: Thresholds = field(default_factory=Thresholds)
    borderline: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        """Jupyter: the verdict with its remedies, then the per-layer table."""
        import html as _html

        from trainwell.notebook import html_table, section

        header, rows = self.table()
        text = _html.escape(self.text()).replace("\n", "<br>")
        return section(f"Gradient health: {self.network}", f"<div>{text}</div>",
                       html_table(header, rows))

    def flagged(self, problem: str) -> list[str]:
        """Names of the layers flagged with ``problem`` (borderline flags included)."""
        return [v.layer for v in self.verdicts if problem in v.flags]

    def closest(self, problem: str) -> tuple[str, Margin] | None:
        """The layer whose value is furthest past (or closest to) ``problem``'s threshold."""
        found = [(v.layer, v.margins[problem]) for v in self.verdicts if problem in v.margins]
        found = [(name, m) for name, m in found if not math.isnan(m.margin)]
        return max(found, key=lambda lm: lm[1].margin) if found else None

    @property
    def remedies(self) -> dict[str, str]:
        return {p: REMEDIES[p] for p in self.problems}

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the per-layer table."""
        return TABLE_HEADER, table_rows(self.layers, [v.verdict for v in self.verdicts])

    def headline(self) -> str:
        """The network verdict line, e.g. ``Network verdict: HEALTHY — borderline: dying
        (50 samples, steps 0–294).``"""
        n, first, last = self.steps
        near = f" — borderline: {', '.join(self.borderline)}" if self.borderline else ""
        return f"Network verdict: {self.network.upper()}{near} ({n} samples, steps {first}–{last})."

    def text(self) -> str:
        """The network verdict, where it was seen and the remedies, as plain lines."""
        lines = [self.headline()]
        for p in self.problems:
            layers = [v.layer for v in self.verdicts if p in v.clear]
            shown = ", ".join(layers[:6]) + (f" and {len(layers) - 6} more"
                                             if len(layers) > 6 else "")
            why = next(v.reasons[v.flags.index(p)] for v in self.verdicts if p in v.clear)
            guard = [v for v in self.verdicts if p in v.flags
                     and "NaN guard" in v.reasons[v.flags.index(p)]]
            if guard:
                why = guard[0].reasons[guard[0].flags.index(p)]
            lines.append(f"- {p} in {shown} (e.g. {why}).")
            lines.extend("  " + r for r in REMEDIES[p].split("\n"))
        for p in self.borderline:
            layer, m = self.closest(p)
            value = f"{m.value * 100:.0f}%" if m.rule in ("dead", "saturated") else f"{m.value:.2g}"
            lines.append(f"- borderline {p}: {layer} {_RULE_WORDS.get(m.rule, m.rule)} {value}, "
                         f"{m.words()} — within the band where a longer probe or another "
                         "seed can tip the verdict.")
        if not self.problems and not self.borderline:
            lines.append("Gradients flow to every layer at a similar scale; no dead or "
                         "saturated layers.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready): network verdict, problems, borderline problems, remedies,
        per-layer values and the margin of each rule to its threshold."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) or math.isinf(x) else float(x)

        margins = {}
        for p in SEVERITY:
            c = self.closest(p)
            if c is not None:
                margins[p] = {"layer": c[0], **c[1].to_dict()}
        return {
            "network": self.network, "problems": self.problems, "borderline": self.borderline,
            "remedies": self.remedies, "margins": margins,
            "samples": self.steps[0], "first_step": self.steps[1], "last_step": self.steps[2],
            "thresholds": self.thresholds.__dict__,
            "layers": [{"layer": s.layer, "kind": s.kind, "verdict": v.verdict,
                        "flags": v.flags, "reasons": v.reasons, "borderline": v.borderline,
                        "margins": {p: m.to_dict() for p, m in v.margins.items()},
                        **{k: num(getattr(s, k)) for k in (
                            "act_mean", "act_std", "saturated", "dead", "grad_norm",
                            "ratio_to_last", "rms_ratio_to_last", "update_ratio",
                            "grad_growth")},
                        "nonfinite": s.nonfinite}
                       for s, v in zip(self.layers, self.verdicts, strict=True)],
        }

    def __str__(self) -> str:
        return self.text()


def judge(record: ProbeRecord, thresholds: Thresholds | None = None) -> Diagnosis:
    """Verdicts for every layer and for the network from a probe record.

    Args:
        record: from :meth:`GradientProbe.record` or :meth:`ProbeRecord.load`.
        thresholds: default :class:`Thresholds`.

    Example:
        >>> d = judge(probe.record())                 # doctest: +SKIP
        >>> d.network, d.flagged("vanishing")[:2], d.borderline     # doctest: +SKIP
        ('vanishing', ['hidden1', 'hidden2'], [])
    """
    th = thresholds or Thresholds()
    summaries = summarize(record)
    verdicts = [_judge_layer(s, th) for s in summaries]
    div = record.meta.get("divergence")
    if div:   # the NaN guard stopped training; it names the parameter that blew up first
        param = str(div.get("layer") or "")
        hit = [i for i, m in enumerate(record.modules) if param.startswith(m + ".")]
        reason = f"the NaN guard stopped training at step {div.get('step')}" + (
            f" and names {param}" if param else "")
        for i in (hit[:1] or range(len(verdicts))):
            v = verdicts[i]
            v.margins[EXPLODING] = Margin("nonfinite", 1.0, 0.0, math.inf, 0.0)
            if EXPLODING in v.flags:
                v.reasons[0] = f"{reason}; {v.reasons[0]}"
            else:
                v.flags.insert(0, EXPLODING)
                v.reasons.insert(0, reason)
    problems = [p for p in SEVERITY if any(p in v.clear for v in verdicts)]
    borderline = [p for p in SEVERITY if p not in problems
                  and any(p in v.borderline for v in verdicts)]
    n = len(record)
    steps = (n, int(record.steps[0]) if n else 0, int(record.steps[-1]) if n else 0)
    return Diagnosis(network=problems[0] if problems else HEALTHY, problems=problems,
                     layers=summaries, verdicts=verdicts, steps=steps, thresholds=th,
                     borderline=borderline)
