"""Figures as display objects, in the manner of scikit-learn's ``CalibrationDisplay``.

A display stores what it computed, draws on a given matplotlib Axes with
:meth:`plot` (returning itself, with ``ax_`` and ``figure_`` set) and never
touches matplotlib's global state: no backend switch, no pyplot figure unless
``plot`` is called without an Axes.

* :class:`ReliabilityDisplay` - a reliability diagram of one model, built
  :meth:`~ReliabilityDisplay.from_predictions`;
* :class:`AlignmentDisplay` - per-example alignment distributions of the
  candidates and the noise floor for one explainer;
* :class:`VerdictDisplay` - a forest plot of equivalence tests against their
  margins, built :meth:`~VerdictDisplay.from_verdict` (rows: :func:`verdict_rows`);
* :class:`RegionHeatmapDisplay` - an image with one model's attributions of
  its regions drawn over it (the per-example view of image comparisons);
* :class:`SizeTrustDisplay` - the candidates of a compression search by the
  bytes their weights need, each with its verdict per dimension, built
  :meth:`~SizeTrustDisplay.from_search`.
"""

from __future__ import annotations

from textwrap import shorten
from typing import Sequence

import numpy as np

from .metrics.calibration import Strategy, expected_calibration_error, reliability_diagram

__all__ = ["ReliabilityDisplay", "AlignmentDisplay", "VerdictDisplay", "RegionHeatmapDisplay", "SizeTrustDisplay",
           "verdict_rows", "DECISION_COLOURS"]

_DIAGONAL = "_perfectly calibrated"  # a leading underscore keeps it out of legends


def _new_axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


class ReliabilityDisplay:
    """Reliability diagram: accuracy against mean confidence per bin, with Wilson intervals.

    Parameters
    ----------
    bins : list of dict
        Non-empty bins as returned by :func:`trusteq.metrics.calibration.reliability_diagram`.
    ece : float
        The model's ECE with the same bins, in [0, 1], shown in the legend.
    name : str, optional
        Model name for the legend.
    strategy : {"equal_width", "equal_mass"}, default="equal_width"

    Attributes
    ----------
    line_ : matplotlib ErrorbarContainer
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, bins: list[dict], *, ece: float, name: str | None = None,
                 strategy: Strategy = "equal_width"):
        self.bins = bins
        self.ece = float(ece)
        self.name = name
        self.strategy = strategy

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins: int = 10, strategy: Strategy = "equal_width",
                         name: str | None = None, ax=None, **plot_kwargs) -> "ReliabilityDisplay":
        """Compute the bins from gold classes (n,) and probabilities (n, K), then :meth:`plot`.

        Raises
        ------
        ValueError
            Invalid probabilities or binning (see :func:`trusteq.validation.check_probabilities`).
        """
        bins = reliability_diagram(y_true, y_prob, n_bins=n_bins, strategy=strategy)
        ece = expected_calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy)
        return cls(bins, ece=ece, name=name, strategy=strategy).plot(ax=ax, **plot_kwargs)

    def plot(self, *, ax=None, name: str | None = None, ref_line: bool = True, color: str | None = None,
             marker: str = "o") -> "ReliabilityDisplay":
        """Draw on ``ax`` (a new pyplot Axes if None); the diagonal is drawn once per Axes."""
        ax = _new_axes(ax)
        name = name or self.name or "model"
        if ref_line and not any(line.get_label() == _DIAGONAL for line in ax.get_lines()):
            ax.plot([0, 1], [0, 1], ls=":", color="#888", lw=1, label=_DIAGONAL)
        conf = np.array([b["confidence"] for b in self.bins])
        acc = np.array([b["accuracy"] for b in self.bins])
        lo = np.array([b["accuracy_ci"][0] for b in self.bins])
        hi = np.array([b["accuracy_ci"][1] for b in self.bins])
        self.line_ = ax.errorbar(conf, acc, yerr=[acc - lo, hi - acc], color=color, marker=marker, ms=4, lw=1.2,
                                 capsize=2, label=f"{name} (ECE {self.ece:.3f})")
        ax.set(xlim=(0, 1.0), ylim=(0, 1.02), xlabel="mean confidence in bin", ylabel="accuracy in bin")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class AlignmentDisplay:
    """Per-example alignment with the reference, one violin per compared run.

    Parameters
    ----------
    values : dict label -> ndarray, shape (n,)
        Per-example values of one alignment metric (NaN where undefined);
        labels starting with "noise floor" are drawn grey.
    metric_label : str
        Axis label, e.g. "top-10 Jaccard with l3".
    title : str, optional
    """

    #: More runs than this get slanted tick labels (upright ones run into each other).
    MAX_UPRIGHT_LABELS = 5

    def __init__(self, values: dict[str, np.ndarray], *, metric_label: str, title: str | None = None):
        self.values = values
        self.metric_label = metric_label
        self.title = title

    @classmethod
    def from_alignments(cls, alignments: Sequence, metric: str, *, reference: str, title: str | None = None,
                        ax=None) -> "AlignmentDisplay":
        """From :class:`trusteq.results.Alignment` objects (candidates and noise floors), then :meth:`plot`.

        ``metric`` is a key of each alignment's ``values`` (e.g. "cosine", "jaccard@10", "paper_jaccard@10");
        floors (the reference's, and a candidate's own where measured) are labelled "noise floor (model)".
        """
        values = {(a.model if a.kind == "candidate" else f"noise floor\n({a.model})"): a.values[metric]
                  for a in alignments}
        name, _, k = metric.partition("@")
        label = {"jaccard": f"top-{k} Jaccard", "paper_jaccard": f"the paper's top-{k} word Jaccard"}.get(
            name, f"{metric} similarity")
        return cls(values, metric_label=f"{label} with {reference}", title=title).plot(ax=ax)

    def plot(self, *, ax=None) -> "AlignmentDisplay":
        """Draw on ``ax`` (a new pyplot Axes if None)."""
        ax = _new_axes(ax)
        labels = list(self.values)
        data = [np.asarray(v)[np.isfinite(v)] for v in self.values.values()]
        parts = ax.violinplot([d if len(d) else [np.nan] for d in data], showmeans=True, showextrema=False)
        for body, label in zip(parts["bodies"], labels):
            body.set_facecolor("#adb5bd" if label.startswith("noise floor") else "#d9480f")
            body.set_alpha(0.6)
        slant = len(labels) > self.MAX_UPRIGHT_LABELS
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8, rotation=35 if slant else 0,
                      ha="right" if slant else "center", rotation_mode="anchor")
        ax.set_ylim(min(-0.02, *(float(np.min(d)) - 0.02 for d in data if len(d))), 1.02)
        ax.set_ylabel(self.metric_label)
        if self.title:
            ax.set_title(self.title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class RegionHeatmapDisplay:
    """An image with the attribution of each of its regions drawn over it.

    Green pushes towards the explained class, red away, opacity ``|w| / scale``
    (0.7 at most, so the image shows through); the ``top`` regions are outlined.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, C), C in {1, 3}
    regions : sequence of :class:`trusteq.explain.Region`, length d
    weights : ndarray, shape (d,)
        Attributions (probability units).
    top : sequence of int
        Indices of the regions to outline (e.g. the top-k by ``|w|``).
    scale : float, optional
        ``|w|`` drawn fully opaque (default: ``max |w|``; give one scale to compare models).
    title : str, optional
    """

    def __init__(self, image, regions, weights, *, top=(), scale: float | None = None, title: str | None = None):
        self.image, self.regions, self.weights = np.asarray(image), list(regions), np.asarray(weights, float)
        self.top, self.title = list(top), title
        peak = float(np.max(np.abs(self.weights))) if len(self.weights) else 0.0
        self.scale = scale if scale else (peak or 1.0)

    def overlay(self) -> np.ndarray:
        """The coloured layer, shape (H, W, 4), RGBA in [0, 1]."""
        layer = np.zeros((*self.image.shape[:2], 4))
        for region, w in zip(self.regions, self.weights):
            colour = (0.18, 0.62, 0.27) if w > 0 else (0.88, 0.19, 0.19)
            alpha = 0.7 * min(abs(w) / self.scale, 1.0)
            layer[region.row:region.row + region.height, region.col:region.col + region.width] = (*colour, alpha)
        return layer

    def plot(self, *, ax=None) -> "RegionHeatmapDisplay":
        """Draw on ``ax`` (a new pyplot Axes if None)."""
        from matplotlib.patches import Rectangle

        ax = _new_axes(ax)
        grey = self.image.shape[2] == 1
        ax.imshow(self.image[..., 0] if grey else self.image, cmap="gray" if grey else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.imshow(self.overlay(), interpolation="nearest")
        for i in self.top:
            r = self.regions[i]
            ax.add_patch(Rectangle((r.col - 0.5, r.row - 0.5), r.width, r.height, fill=False, lw=1.2,
                                   edgecolor="#1c7ed6"))
        ax.set_axis_off()
        if self.title:
            ax.set_title(self.title, fontsize=7)
        self.ax_, self.figure_ = ax, ax.figure
        return self


#: Colour (Okabe-Ito, readable by most colour-blind readers) and marker of each decision; the marker alone tells
#: them apart in grey: filled circle, cross, open circle.
_DECISION_STYLE = {"equivalent": ("#009e73", "o", "#009e73"), "not equivalent": ("#d55e00", "X", "#d55e00"),
                   "inconclusive": ("#e69f00", "o", "white")}
#: The colour of each decision in every figure (Okabe-Ito).
DECISION_COLOURS = {decision: style[0] for decision, style in _DECISION_STYLE.items()}
_RELATIONS = {"TOST": "within ±{m:g}", "non-inferiority": "above −{m:g}", "non-superiority": "below {m:g}"}
_ROW_KEYS = ("label", "statistic", "interval", "margin", "test", "decision")
_PART_LABELS = {"accuracy": "accuracy Δ", "flip_rate": "flip rate", "calibration": "calibration added (RMS)",
                "brier": "Brier Δ", "agreement": "agreement δ", "gross_disagreement": "gross disagreement"}


def verdict_rows(verdict: dict) -> list[dict]:
    """The rows of :class:`VerdictDisplay` for one candidate's verdict: one per part, in the verdict's order.

    Parameters
    ----------
    verdict : dict
        ``comparisons.<candidate>.verdict`` of a report (``{"overall", "dimensions": {DIM: {"parts": ...}}}``).

    Returns
    -------
    list of dict
        ``label`` ("predictions: flip rate"), ``group`` (the dimension), and the part's ``statistic``,
        ``interval``, ``margin``, ``test``, ``decision``, ``n`` and ``reason`` (untested parts).
    """
    return [{"label": f"{dim}: {_PART_LABELS.get(name, name.replace('_', ' '))}", "group": dim,
             **{k: p.get(k) for k in ("statistic", "interval", "margin", "test", "decision", "n", "reason")}}
            for dim, d in verdict["dimensions"].items() for name, p in d["parts"].items()]


class VerdictDisplay:
    """Forest plot of equivalence tests: each statistic with its interval against its margin, one row per test.

    Statistics of different tests have different units (an accuracy difference, a flip rate, a delta of
    cosines), so every row is drawn **divided by its margin**: the margin's band has the same width on every
    row (TOST from −1 to 1, non-inferiority from −1 rightwards, non-superiority up to +1; ticks read −m, 0,
    +m), and the raw statistic, interval and margin are written in the row's label. The axis is clipped at
    :data:`CLIP` margins; an interval running past it ends in an arrowhead. A row's decision is shown by colour
    *and* marker (filled circle equivalent, cross not equivalent, open circle inconclusive) and written at the
    row's end; an untested row (no interval) says "untested: reason" instead.

    Parameters
    ----------
    rows : sequence of mapping
        Each with ``label`` (str), ``statistic`` (float, or None when untested), ``interval`` ([lo, hi], or
        None when untested), ``margin`` (float > 0), ``test`` ("TOST", "non-inferiority" or
        "non-superiority") and ``decision`` ("equivalent", "not equivalent" or "inconclusive"); optionally
        ``reason`` (why untested), ``n`` (examples, added to the label) and ``group`` (a thin line separates
        consecutive rows of different groups). Rows are generic: parts of a verdict (:func:`verdict_rows`),
        or slices of one part.
    title : str, optional

    Attributes
    ----------
    markers_ : list of matplotlib Line2D
        One per tested row, top to bottom.
    bands_ : list of matplotlib Rectangle
        The margin band of each row.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Raises
    ------
    ValueError
        A row lacks a key, has an unknown test or decision, a margin <= 0, or an interval without a statistic.
    """

    #: The axis reaches at most this many margins either side of 0.
    CLIP = 4.0

    def __init__(self, rows, *, title: str | None = None):
        self.rows = [_check_row(i, r) for i, r in enumerate(rows)]
        self.title = title

    @classmethod
    def from_verdict(cls, verdict: dict, *, title: str | None = None, ax=None) -> "VerdictDisplay":
        """The rows of one candidate's verdict (:func:`verdict_rows`), then :meth:`plot`."""
        return cls(verdict_rows(verdict), title=title).plot(ax=ax)

    def plot(self, *, ax=None, legend: bool = True) -> "VerdictDisplay":
        """Draw on ``ax`` (a new pyplot Axes if None), the first row on top."""
        ax = _new_axes(ax)
        limit = self._limit()
        self.bands_, self.markers_ = [], []
        for y, row in enumerate(self.rows):
            self._draw_row(ax, -y, row, limit)
        self._decorate(ax, limit, legend)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _limit(self) -> float:
        """Half-width of the x axis, in margins: room for every point and interval end, within [1.5, CLIP]."""
        ends = [abs(x) / r["margin"] for r in self.rows if r["interval"] is not None
                for x in (*r["interval"], r["statistic"])]
        return float(np.clip(1.1 * max(ends, default=0.0), 1.5, self.CLIP))

    def _draw_row(self, ax, y: float, row: dict, limit: float) -> None:
        from matplotlib.patches import Rectangle

        lo, hi = {"TOST": (-1, 1), "non-inferiority": (-1, limit), "non-superiority": (-limit, 1)}[row["test"]]
        self.bands_.append(ax.add_patch(Rectangle((lo, y - 0.32), hi - lo, 0.64, facecolor="#dee2e6",
                                                  edgecolor="#adb5bd", lw=0.6, zorder=0)))
        color, marker, face = _DECISION_STYLE[row["decision"]]
        ax.text(1.02, y, row["decision"], transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                color=color, fontweight="bold")
        if row["interval"] is None:
            reason = shorten(f"untested: {row.get('reason') or 'no interval'}", 90, placeholder="…")
            ax.text(-limit + 0.05, y, reason, va="center", fontsize=7.5, color="#495057", style="italic")
            return
        inner = limit - 0.1  # a statistic past the axis is drawn just inside it, beside the arrowhead
        scaled = [min(max(x / row["margin"], -lim), lim) for x, lim in zip((*row["interval"], row["statistic"]),
                                                                             (limit, limit, inner))]
        ax.plot(scaled[:2], [y, y], color=color, lw=1.6, solid_capstyle="butt", zorder=2)
        for end, raw, arrow in ((scaled[0], row["interval"][0], "<"), (scaled[1], row["interval"][1], ">")):
            if abs(raw / row["margin"]) > limit:  # clipped: an arrowhead at the edge
                ax.plot([end], [y], marker=arrow, color=color, ms=5, zorder=2)
        self.markers_.append(ax.plot([scaled[2]], [y], marker=marker, ms=8, color=color, markerfacecolor=face,
                                     mew=1.6, ls="", zorder=3)[0])

    def _decorate(self, ax, limit: float, legend: bool) -> None:
        n = len(self.rows)
        ax.axvline(0, color="#495057", lw=0.8, ls=":", zorder=1)
        for y in range(1, n):  # a thin line between groups
            if self.rows[y].get("group") != self.rows[y - 1].get("group"):
                ax.axhline(-y + 0.5, color="#ced4da", lw=0.6)
        ax.set_yticks([-y for y in range(n)], [_row_label(r) for r in self.rows], fontsize=8)
        ticks = np.arange(-int(limit), int(limit) + 1)
        ax.set_xticks(ticks, [_margin_tick(int(t)) for t in ticks], fontsize=8)
        ax.set(xlim=(-limit, limit), ylim=(-n + 0.5, 0.5))
        ax.set_xlabel("statistic ÷ its margin m (shaded: within the margin; dotted: no difference)", fontsize=8)
        if self.title:  # above the legend's line
            ax.set_title(self.title, fontsize=10, loc="left", pad=18 if legend else 6)
        if legend:
            ax.legend(handles=_legend_handles(), loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=7.5,
                      frameon=False, handletextpad=0.3, columnspacing=1.0, borderaxespad=0.2)


def _check_row(i: int, row) -> dict:
    """A row of :class:`VerdictDisplay` as a dict, checked; see its Raises."""
    from .metrics.verdict import DECISIONS, TESTS

    missing = [k for k in _ROW_KEYS if k not in row]
    name = f"row {i} ({row.get('label', '?')!r})"
    if missing:
        raise ValueError(f"{name} lacks {missing}; a row needs {list(_ROW_KEYS)}")
    if row["test"] not in TESTS or row["decision"] not in DECISIONS:
        raise ValueError(f"{name}: test must be one of {list(TESTS)} and decision one of {list(DECISIONS)}, got "
                         f"{row['test']!r} and {row['decision']!r}")
    if not (isinstance(row["margin"], (int, float)) and row["margin"] > 0):
        raise ValueError(f"{name}: margin must be a number > 0, got {row['margin']!r}")
    if row["interval"] is not None and (row["statistic"] is None or len(row["interval"]) != 2):
        raise ValueError(f"{name}: a tested row needs a statistic and an interval [lo, hi], got "
                         f"{row['statistic']!r} and {row['interval']!r}")
    return dict(row)


def _row_label(row: dict) -> str:
    """The row's label over its raw numbers: "0.012 [0.009, 0.017], below 0.05 (non-superiority), n=1725"."""
    n = f", n={row['n']:,}" if row.get("n") is not None else ""
    rule = f"{_RELATIONS[row['test']].format(m=row['margin'])} ({row['test']}){n}"
    if row["interval"] is None:
        return f"{row['label']}\nuntested; {rule}"
    lo, hi = row["interval"]
    return f"{row['label']}\n{_number(row['statistic'])} [{_number(lo)}, {_number(hi)}], {rule}"


def _number(x: float) -> str:
    """Three decimals with a true minus sign, and no "−0.000"."""
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text.replace("-", "−")


def _margin_tick(t: int) -> str:
    return "0" if t == 0 else f"{'−' if t < 0 else '+'}{abs(t) if abs(t) > 1 else ''}m"


def _legend_handles() -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    marks = [Line2D([], [], ls="", marker=m, ms=7, color=c, markerfacecolor=f, mew=1.4, label=d)
             for d, (c, m, f) in _DECISION_STYLE.items()]
    return [*marks, Patch(facecolor="#dee2e6", edgecolor="#adb5bd", label="within the margin")]


class SizeTrustDisplay:
    """Size against trust: each candidate of a compression search (a column, smallest left, labelled with the
    megabytes its weights need) against its verdict on each dimension and overall (a row each), drawn with the
    decisions' colours and markers (:data:`DECISION_COLOURS`); a small grey dot where it was not tried.

    Parameters
    ----------
    candidates : sequence of mapping
        Each with ``name`` (str), ``megabytes`` (float or None: unknown) and ``decisions`` (mapping of a
        dimension, or "overall", to "equivalent", "not equivalent" or "inconclusive"; empty: not tried).
    chosen : str, optional
        The chosen candidate's name (marked in its label).
    reference_megabytes : float, optional
        The reference's size, written in the title.
    confirmation : (str, str), optional
        The selected candidate's name and its overall decision on the confirmation split, written in the
        title (the columns are selection verdicts: a selected candidate that fails confirmation is not chosen).

    Attributes
    ----------
    dimensions_ : list of str
        The rows, top to bottom ("overall" last).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Raises
    ------
    ValueError
        A decision that is not one of the three.
    """

    def __init__(self, candidates, *, chosen: str | None = None, reference_megabytes: float | None = None,
                 confirmation: tuple[str, str] | None = None):
        for c in candidates:
            bad = set(c["decisions"].values()) - set(_DECISION_STYLE)
            if bad:
                raise ValueError(f"candidate {c['name']!r}: unknown decisions {sorted(bad)}")
        self.candidates, self.chosen, self.reference_megabytes = list(candidates), chosen, reference_megabytes
        self.confirmation = confirmation

    @classmethod
    def from_search(cls, summary: dict, *, ax=None) -> "SizeTrustDisplay":
        """The candidates of ``search.json`` (:func:`trusteq.search`) with their selection verdicts, then
        :meth:`plot`."""
        rows = []
        for c in summary["candidates"]:
            v = c.get("verdict") if c.get("tried") else None
            decisions = {} if v is None else {**{d: x["decision"] for d, x in v["dimensions"].items()},
                                              "overall": v["overall"]}
            mb = c.get("effective_bytes")
            rows.append({"name": c["name"], "megabytes": mb / 1e6 if mb else None, "decisions": decisions})
        ref = summary.get("reference", {}).get("size_bytes")
        confirmed = summary.get("guarantee", {}).get("confirmation_verdict")
        confirmation = (summary["selected"], confirmed) if summary.get("selected") and confirmed else None
        return cls(rows, chosen=summary.get("chosen"), reference_megabytes=ref / 1e6 if ref else None,
                   confirmation=confirmation).plot(ax=ax)

    def plot(self, *, ax=None) -> "SizeTrustDisplay":
        """Draw on ``ax`` (a new pyplot Axes if None)."""
        ax = _new_axes(ax)
        dims = [d for c in self.candidates for d in c["decisions"] if d != "overall"]
        self.dimensions_ = list(dict.fromkeys(dims)) + ["overall"]
        for x, c in enumerate(self.candidates):
            for y, dim in enumerate(self.dimensions_):
                decision = c["decisions"].get(dim)
                if decision is None:
                    ax.scatter(x, y, s=12, color="#ced4da")
                    continue
                colour, marker, face = _DECISION_STYLE[decision]
                ax.scatter(x, y, s=110 if dim == "overall" else 70, marker=marker, edgecolors=colour, facecolors=face,
                           linewidths=1.5)
        labels = [f"{c['name']}{' (chosen)' if c['name'] == self.chosen else ''}\n"
                  f"{'size ?' if c['megabytes'] is None else format(c['megabytes'], '.1f') + ' MB'}"
                  for c in self.candidates]
        ax.set_xticks(range(len(self.candidates)), labels, fontsize=7, rotation=30, ha="right")
        ax.set_yticks(range(len(self.dimensions_)), self.dimensions_, fontsize=7)
        ax.set_xlim(-0.5, len(self.candidates) - 0.5)
        ax.set_ylim(-0.5, len(self.dimensions_) - 0.5)
        ax.axhline(len(self.dimensions_) - 1.5, color="#adb5bd", linewidth=0.6)
        ref = f" (reference {self.reference_megabytes:.1f} MB)" if self.reference_megabytes else ""
        confirmed = f"\nconfirmation split: {self.confirmation[0]} {self.confirmation[1]}" if self.confirmation else ""
        ax.set_title(f"Selection verdict by size, smallest left{ref}{confirmed}", fontsize=8)
        from matplotlib.lines import Line2D

        untried = Line2D([], [], ls="", marker="o", ms=3.5, color="#ced4da", label="not tried")
        ax.legend(handles=_legend_handles()[:len(_DECISION_STYLE)] + [untried], fontsize=6, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0), frameon=False)
        self.ax_, self.figure_ = ax, ax.figure
        return self
