"""VerdictDisplay: the verdict as a forest plot, drawn on a given Axes without pyplot."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from trusteq.display import VerdictDisplay, verdict_rows
from trusteq.metrics.verdict import dimension, part, undecided, verdict


@pytest.fixture
def one_verdict():
    common = dict(n=1725, alpha=0.05)
    return verdict({
        "predictions": dimension({
            "accuracy": part(-0.002, [-0.006, 0.003], margin=0.01, test="non-inferiority", **common),
            "flip_rate": part(0.09, [0.07, 0.11], margin=0.05, test="non-superiority", **common)}),
        "calibration": dimension({"calibration": part(0.0, [-0.06, 0.04], margin=0.05, test="TOST", **common)}),
        "explanations.lime": dimension({"agreement": undecided("explainer too noisy", margin=0.05,
                                                               test="non-inferiority", n=15)}),
    })


def test_verdict_rows_are_generic_rows(one_verdict):
    rows = verdict_rows(one_verdict)
    assert [r["label"] for r in rows] == ["predictions: accuracy Δ", "predictions: flip rate",
                                          "calibration: calibration added (RMS)", "explanations.lime: agreement δ"]
    assert [r["decision"] for r in rows] == ["equivalent", "not equivalent", "inconclusive", "inconclusive"]
    assert rows[3]["interval"] is None and rows[3]["reason"] == "explainer too noisy"


def test_forest_plot_on_a_given_axes(one_verdict):
    import matplotlib.pyplot as plt

    fig = Figure()
    ax = fig.subplots()
    d = VerdictDisplay.from_verdict(one_verdict, title="l3-int8: not equivalent", ax=ax)
    assert d.ax_ is ax and d.figure_ is fig and plt.get_fignums() == []
    # one marker per tested row, shape by decision: filled circle, cross, open circle
    assert [(m.get_marker(), m.get_markerfacecolor() == m.get_color()) for m in d.markers_] == \
        [("o", True), ("X", True), ("o", False)]
    assert len({m.get_color() for m in d.markers_}) == 3
    # one band per row, all in margin units: non-inferiority from -1 rightwards, non-superiority up to +1, TOST -1..1
    assert len(d.bands_) == 4
    lo, hi = ax.get_xlim()
    spans = [(b.get_x(), b.get_x() + b.get_width()) for b in d.bands_]
    assert spans[0] == (-1, hi) and spans[1] == (lo, 1) and spans[2] == (-1, 1) and -lo == hi <= VerdictDisplay.CLIP
    assert 0.09 / 0.05 < hi  # the flip rate (1.8 margins) and its interval fit
    # raw values in the labels, the decision at each row's end, untested rows as text
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[1] == "predictions: flip rate\n0.090 [0.070, 0.110], below 0.05 (non-superiority), n=1,725"
    assert labels[0].splitlines()[1].startswith("−0.002 [−0.006, 0.003], above −0.01")
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("equivalent") == 1 and texts.count("inconclusive") == 2 and "not equivalent" in texts
    assert "untested: explainer too noisy" in texts
    assert ax.get_title(loc="left") == "l3-int8: not equivalent"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["equivalent", "not equivalent", "inconclusive",
                                                                   "within the margin"]


def test_intervals_past_the_axis_end_in_an_arrowhead():
    rows = [{"label": "genre=fiction", "statistic": -0.25, "interval": [-0.3, -0.2], "margin": 0.01,
             "test": "non-inferiority", "decision": "not equivalent"}]
    d = VerdictDisplay(rows).plot(ax=Figure().subplots(), legend=False)
    assert d.ax_.get_xlim() == (-VerdictDisplay.CLIP, VerdictDisplay.CLIP) and d.ax_.get_legend() is None
    assert {line.get_marker() for line in d.ax_.get_lines()} >= {"<", ">", "X"}
    assert np.isclose(d.markers_[0].get_xdata()[0], -VerdictDisplay.CLIP + 0.1)


@pytest.mark.parametrize("change, message", [
    ({"margin": 0}, "margin must be a number > 0"), ({"test": "two-sided"}, "test must be one of"),
    ({"decision": "maybe"}, "decision one of"), ({"statistic": None}, "a tested row needs a statistic")])
def test_bad_rows_are_refused(change, message):
    row = {"label": "x", "statistic": 0.0, "interval": [-0.1, 0.1], "margin": 0.2, "test": "TOST",
           "decision": "equivalent"}
    with pytest.raises(ValueError, match=message):
        VerdictDisplay([row, {**row, **change}])
    with pytest.raises(ValueError, match=r"row 0 \('x'\) lacks \['interval'\]"):
        VerdictDisplay([{k: v for k, v in row.items() if k != "interval"}])
