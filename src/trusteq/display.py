"""Figures as display objects, in the manner of scikit-learn's ``CalibrationDisplay``.

A display stores what it computed, draws on a given matplotlib Axes with
:meth:`plot` (returning itself, with ``ax_`` and ``figure_`` set) and never
touches matplotlib's global state: no backend switch, no pyplot figure unless
``plot`` is called without an Axes.

* :class:`ReliabilityDisplay` - a reliability diagram of one model, built
  :meth:`~ReliabilityDisplay.from_predictions`;
* :class:`AlignmentDisplay` - per-example alignment distributions of the
  candidates and the noise floor for one explainer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .metrics.calibration import Strategy, expected_calibration_error, reliability_diagram

__all__ = ["ReliabilityDisplay", "AlignmentDisplay"]

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
