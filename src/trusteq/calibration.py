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

import numpy as np
from scipy.stats import binomtest

__all__ = [
    "STRATEGIES",
    "check_probabilities",
    "bin_indices",
    "expected_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "negative_log_likelihood",
    "classwise_ece",
    "reliability_diagram",
    "UNCHECKED",
]

STRATEGIES = ("equal_width", "equal_mass")


def check_probabilities(y_true, y_prob, atol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``(y_true, y_prob)``.

    Returns
    -------
    y_true : ndarray of int64, shape (n,)
    y_prob : ndarray of float64, shape (n, K)

    Raises
    ------
    ValueError
        Empty input, wrong dimensions, mismatched lengths, K < 2, labels
        outside [0, K), non-finite or negative probabilities, or rows that do
        not sum to 1 within ``atol``.
    """
    y_prob = np.asarray(y_prob, dtype=np.float64)
    y_true = np.asarray(y_true)
    if y_prob.ndim != 2:
        raise ValueError(f"y_prob must be 2-D (n, K), got shape {y_prob.shape}")
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D (n,), got shape {y_true.shape}")
    n, k = y_prob.shape
    if n == 0:
        raise ValueError("y_prob is empty (n = 0)")
    if k < 2:
        raise ValueError(f"y_prob needs at least 2 classes, got K={k}")
    if len(y_true) != n:
        raise ValueError(f"y_true has {len(y_true)} entries but y_prob has {n} rows")
    if not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(np.equal(np.mod(y_true, 1), 0)):
            raise ValueError("y_true must hold integer class indices")
    y_true = y_true.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"y_true must be in [0, {k}), got values in [{y_true.min()}, {y_true.max()}]")
    if not np.isfinite(y_prob).all():
        raise ValueError("y_prob contains NaN or infinite values")
    if (y_prob < 0).any():
        raise ValueError("y_prob contains negative values")
    if np.abs(y_prob.sum(axis=1) - 1).max() > atol:
        raise ValueError(f"rows of y_prob must sum to 1 (within {atol})")
    return y_true, y_prob


def bin_indices(confidence: np.ndarray, n_bins: int = 10, strategy: str = "equal_width") -> np.ndarray:
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
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = np.asarray(confidence, dtype=np.float64)
    if strategy == "equal_width":
        inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
        return np.searchsorted(inner, confidence, side="left").astype(np.int64)
    if strategy == "equal_mass":
        order = np.argsort(confidence, kind="stable")
        bins = np.empty(len(confidence), dtype=np.int64)
        for b, members in enumerate(np.array_split(order, n_bins)):
            bins[members] = b
        return bins
    raise ValueError(f"unknown binning strategy {strategy!r}; expected one of {STRATEGIES}")


def _bin_stats(y_true, y_prob, n_bins, strategy):
    conf = y_prob.max(axis=1)
    correct = (y_prob.argmax(axis=1) == y_true).astype(np.float64)
    bins = bin_indices(conf, n_bins, strategy)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=conf, minlength=n_bins) / count
        acc = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return count, mean_conf, acc, bins, conf, correct


def expected_calibration_error(y_true, y_prob, n_bins: int = 10, strategy: str = "equal_width") -> float:
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
    """
    return _ece(*check_probabilities(y_true, y_prob), n_bins, strategy)


def _ece(y_true, y_prob, n_bins=10, strategy="equal_width"):
    count, conf, acc, *_ = _bin_stats(y_true, y_prob, n_bins, strategy)
    nz = count > 0
    return float(np.sum(count[nz] / count.sum() * np.abs(acc[nz] - conf[nz])))


def maximum_calibration_error(y_true, y_prob, n_bins: int = 10, strategy: str = "equal_width") -> float:
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


def classwise_ece(y_true, y_prob, n_bins: int = 10, strategy: str = "equal_width") -> float:
    """Class-wise ECE, in [0, 1]: the mean over classes k of the ECE of
    ``y_prob[:, k]`` as a forecast of ``y_true == k`` (Kull et al. 2019,
    "Beyond temperature scaling", eq. for classwise-ECE).
    """
    return _classwise_ece(*check_probabilities(y_true, y_prob), n_bins, strategy)


def _classwise_ece(y_true, y_prob, n_bins=10, strategy="equal_width"):
    n, k = y_prob.shape
    total = 0.0
    for c in range(k):
        p = y_prob[:, c]
        hit = (y_true == c).astype(np.float64)
        bins = bin_indices(p, n_bins, strategy)
        count = np.bincount(bins, minlength=n_bins).astype(np.float64)
        nz = count > 0
        mean_p = np.bincount(bins, weights=p, minlength=n_bins)[nz] / count[nz]
        freq = np.bincount(bins, weights=hit, minlength=n_bins)[nz] / count[nz]
        total += np.sum(count[nz] / n * np.abs(freq - mean_p))
    return float(total / k)


def reliability_diagram(y_true, y_prob, n_bins: int = 10, strategy: str = "equal_width",
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
