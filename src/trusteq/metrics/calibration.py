"""Calibration metrics of a classifier's top-label confidence.

All functions take the gold classes ``y_true`` of shape (n,) (integers in
[0, K)) and probabilities ``y_prob`` of shape (n, K) whose rows sum to 1.
Confidence is the top-label probability ``max_k y_prob[i, k]`` in [1/K, 1];
a prediction is correct when ``argmax_k y_prob[i, k] == y_true[i]``.

Binning (``strategy``):

* ``"equal_width"``: bins ``(e_b, e_{b+1}]`` with ``e = linspace(0, 1, n_bins+1)``;
  the first bin also holds 0, so a confidence of exactly 1.0 lands in the last
  bin (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3);
* ``"equal_mass"``: examples sorted by confidence (stable) and split into
  ``n_bins`` groups of sizes differing by at most one (Nixon et al. 2019,
  "Measuring Calibration in Deep Learning", adaptive binning).

ECE = sum_b (n_b / n) |acc_b - conf_b| and MCE = max_b |acc_b - conf_b| over
non-empty bins (Guo et al. 2017 eq. 3 and 5; the paper, Rai et al. 2025,
Sec. 3.2, uses equal-width ECE with 10 bins).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from scipy.stats import binomtest

from ..validation import check_at_least, check_option, check_probabilities

__all__ = [
    "STRATEGIES",
    "check_probabilities",  # re-exported from trusteq.validation
    "bin_indices",
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "negative_log_likelihood",
    "classwise_ece",
    "reliability_diagram",
    "UNCHECKED",
]

Strategy = Literal["equal_width", "equal_mass"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


def bin_indices(confidence: np.ndarray, *, n_bins: int = 10, strategy: Strategy = "equal_width") -> np.ndarray:
    """Bin of each confidence, shape (n,), values in [0, n_bins).

    Parameters
    ----------
    confidence : ndarray, shape (n,), values in [0, 1]
    n_bins : int >= 1
    strategy : {"equal_width", "equal_mass"}

    Raises
    ------
    ValueError
        Unknown strategy or ``n_bins < 1``.
    """
    check_at_least("n_bins", n_bins, 1)
    check_option("binning strategy", strategy, STRATEGIES)
    confidence = np.asarray(confidence, dtype=np.float64)
    if strategy == "equal_width":
        inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
        return np.searchsorted(inner, confidence, side="left").astype(np.int64)
    order = np.argsort(confidence, kind="stable")
    bins = np.empty(len(confidence), dtype=np.int64)
    for b, members in enumerate(np.array_split(order, n_bins)):
        bins[members] = b
    return bins


def _binned(forecast, hit, n_bins, strategy):
    """Per bin of ``forecast``: count, mean forecast and observed frequency of ``hit`` (NaN when empty), and bins."""
    bins = bin_indices(forecast, n_bins=n_bins, strategy=strategy)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_forecast = np.bincount(bins, weights=forecast, minlength=n_bins) / count
        freq = np.bincount(bins, weights=hit, minlength=n_bins) / count
    return count, mean_forecast, freq, bins


def _bin_stats(y_true, y_prob, n_bins, strategy):
    conf = y_prob.max(axis=1)
    correct = (y_prob.argmax(axis=1) == y_true).astype(np.float64)
    count, mean_conf, acc, bins = _binned(conf, correct, n_bins, strategy)
    return count, mean_conf, acc, bins, conf, correct


def expected_calibration_error(y_true, y_prob, *, n_bins: int = 10, strategy: Strategy = "equal_width") -> float:
    """Top-label expected calibration error, in [0, 1].

    ECE = sum_b (n_b / n) |acc_b - conf_b| (Guo et al. 2017, eq. 3).

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    y_prob : array-like of float, shape (n, K)
    n_bins : int, default 10 (as in Rai et al. 2025)
    strategy : {"equal_width", "equal_mass"}

    Raises
    ------
    ValueError
        See :func:`check_probabilities` and :func:`bin_indices`.

    Examples
    --------
    Confidences 0.9, 0.8, 0.7, 0.6, of which the first and third are right.
    With 10 bins each example has a bin of its own, so ECE is the mean of
    |1 - 0.9|, |0 - 0.8|, |1 - 0.7| and |0 - 0.6|; with 2 bins all four share
    the bin (0.5, 1]: accuracy 0.5 against mean confidence 0.75.

    >>> y_true = [0, 1, 1, 0]
    >>> y_prob = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    >>> round(expected_calibration_error(y_true, y_prob), 4)
    0.45
    >>> round(expected_calibration_error(y_true, y_prob, n_bins=2), 4)
    0.25
    """
    return _ece(*check_probabilities(y_true, y_prob), n_bins, strategy)


def _ece(y_true, y_prob, n_bins=10, strategy="equal_width"):
    count, conf, acc, *_ = _bin_stats(y_true, y_prob, n_bins, strategy)
    nz = count > 0
    return float(np.sum(count[nz] / count.sum() * np.abs(acc[nz] - conf[nz])))


def maximum_calibration_error(y_true, y_prob, *, n_bins: int = 10, strategy: Strategy = "equal_width") -> float:
    """Top-label maximum calibration error over non-empty bins, in [0, 1].

    MCE = max_b |acc_b - conf_b| (Guo et al. 2017, eq. 5). Same parameters and
    errors as :func:`expected_calibration_error`.
    """
    return _mce(*check_probabilities(y_true, y_prob), n_bins, strategy)


def _mce(y_true, y_prob, n_bins=10, strategy="equal_width"):
    count, conf, acc, *_ = _bin_stats(y_true, y_prob, n_bins, strategy)
    nz = count > 0
    return float(np.max(np.abs(acc[nz] - conf[nz])))


def brier_score(y_true, y_prob) -> float:
    """Multi-class Brier score, in [0, 2].

    BS = (1/n) sum_i sum_k (y_prob[i, k] - 1[y_true[i] = k])^2 (Brier 1950;
    the form used by Rai et al. 2025). For K = 2 this is twice scikit-learn's
    ``brier_score_loss`` on the positive class.

    Examples
    --------
    A certain, right forecast scores 0; (0.5, 0.5) scores 0.25 + 0.25:

    >>> round(brier_score([0, 1], [[1.0, 0.0], [0.5, 0.5]]), 4)
    0.25
    """
    return _brier(*check_probabilities(y_true, y_prob))


def _brier(y_true, y_prob):
    onehot = np.eye(y_prob.shape[1])[y_true]
    return float(np.mean(np.sum((y_prob - onehot) ** 2, axis=1)))


def negative_log_likelihood(y_true, y_prob, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the gold class, in nats, >= 0.

    Probabilities are clipped to ``[eps, 1]`` before the log.
    """
    return _nll(*check_probabilities(y_true, y_prob), eps)


def _nll(y_true, y_prob, eps=1e-12):
    p = np.clip(y_prob[np.arange(len(y_true)), y_true], eps, 1.0)
    return float(-np.mean(np.log(p)))


def classwise_ece(y_true, y_prob, *, n_bins: int = 10, strategy: Strategy = "equal_width") -> float:
    """Class-wise ECE, in [0, 1]: the mean over classes k of the ECE of
    ``y_prob[:, k]`` as a forecast of ``y_true == k`` (Kull et al. 2019,
    "Beyond temperature scaling", eq. for classwise-ECE).
    """
    return _classwise_ece(*check_probabilities(y_true, y_prob), n_bins, strategy)


def _classwise_ece(y_true, y_prob, n_bins=10, strategy="equal_width"):
    total = 0.0
    for c in range(y_prob.shape[1]):
        count, mean_p, freq, _ = _binned(y_prob[:, c], (y_true == c).astype(np.float64), n_bins, strategy)
        nz = count > 0
        total += np.sum(count[nz] / len(y_true) * np.abs(freq[nz] - mean_p[nz]))
    return float(total / y_prob.shape[1])


def reliability_diagram(y_true, y_prob, *, n_bins: int = 10, strategy: Strategy = "equal_width",
                        level: float = 0.95) -> list[dict]:
    """Per-bin data of a reliability diagram.

    Returns
    -------
    list of dict, one per non-empty bin, with ``bin`` (index), ``low`` and
    ``high`` (confidence range of the bin's members for equal-mass bins, the
    bin edges for equal-width bins), ``count``, ``confidence`` (mean
    confidence), ``accuracy``, and ``accuracy_ci`` (Wilson score interval at
    ``level`` for the bin's accuracy).
    """
    y_true, y_prob = check_probabilities(y_true, y_prob)
    count, conf, acc, bins, confidence, correct = _bin_stats(y_true, y_prob, n_bins, strategy)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for b in range(n_bins):
        if count[b] == 0:
            continue
        members = confidence[bins == b]
        low, high = (edges[b], edges[b + 1]) if strategy == "equal_width" else (members.min(), members.max())
        k = int(round(correct[bins == b].sum()))
        ci = binomtest(k, int(count[b])).proportion_ci(confidence_level=level, method="wilson")
        rows.append({"bin": b, "low": float(low), "high": float(high), "count": int(count[b]),
                     "confidence": float(conf[b]), "accuracy": float(acc[b]),
                     "accuracy_ci": [float(ci.low), float(ci.high)]})
    return rows


#: The scalar metrics without input validation, for bootstrap resamples of
#: inputs already checked by :func:`check_probabilities`.
UNCHECKED = {"ece": _ece, "mce": _mce, "brier": _brier, "nll": _nll, "classwise_ece": _classwise_ece}
