"""Prediction-level agreement between a reference and a candidate model.

Inputs are probability matrices of shape (n, K) in the same class order and
gold classes of shape (n,).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from ..validation import check_probabilities, check_same_shape

__all__ = ["accuracy", "agreement_rate", "flip_rates", "mean_kl_divergence", "kl_divergence", "mcnemar_test",
           "flip_indicators"]


def _check_pair(p_ref, p_cand):
    return check_same_shape(p_ref, p_cand, names=("reference", "candidate"), ndim=2, what="probabilities (n, K)")


def accuracy(y_true, y_prob) -> float:
    """Fraction of examples whose argmax class equals ``y_true``, in [0, 1]."""
    return _accuracy(*check_probabilities(y_true, y_prob))


def _accuracy(y_true, y_prob) -> float:
    """:func:`accuracy` without input validation, for bootstrap resamples of checked inputs."""
    return float(np.mean(y_prob.argmax(axis=1) == y_true))


def agreement_rate(p_ref, p_cand) -> float:
    """Fraction of examples on which both models predict the same class, in [0, 1].

    Examples
    --------
    The models predict classes 0, 1, 0, 1 and 0, 0, 1, 1: they agree on the
    first and the last example.

    >>> p_ref = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    >>> p_cand = [[0.8, 0.2], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]]
    >>> round(agreement_rate(p_ref, p_cand), 4)
    0.5
    """
    p_ref, p_cand = _check_pair(p_ref, p_cand)
    return float(np.mean(p_ref.argmax(axis=1) == p_cand.argmax(axis=1)))


def flip_rates(y_true, p_ref, p_cand) -> dict:
    """Share of all n examples whose correctness flips (Dutta et al. 2024,
    "Accuracy is Not All You Need", Sec. 3: flips).

    Returns
    -------
    dict with ``correct_to_wrong`` (reference right, candidate wrong),
    ``wrong_to_correct`` (reference wrong, candidate right) and ``total``
    (their sum), each a fraction of n in [0, 1].

    Examples
    --------
    With gold classes 0, 1, 1, 1 the reference (predicting 0, 1, 0, 1) is
    right on examples 0, 1 and 3, the candidate (0, 0, 1, 1) on 0, 2 and 3:
    example 1 flips to wrong and example 2 to right, one of four each.

    >>> p_ref = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    >>> p_cand = [[0.8, 0.2], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]]
    >>> {k: round(v, 4) for k, v in flip_rates([0, 1, 1, 1], p_ref, p_cand).items()}
    {'correct_to_wrong': 0.25, 'wrong_to_correct': 0.25, 'total': 0.5}
    """
    c2w, w2c = flip_indicators(y_true, p_ref, p_cand)
    return {"correct_to_wrong": float(c2w.mean()), "wrong_to_correct": float(w2c.mean()),
            "total": float(c2w.mean() + w2c.mean())}


def flip_indicators(y_true, p_ref, p_cand) -> tuple[np.ndarray, np.ndarray]:
    """Per-example flips: (correct_to_wrong, wrong_to_correct), each bool of shape (n,)."""
    p_ref, p_cand = _check_pair(p_ref, p_cand)
    y_true = np.asarray(y_true)
    if y_true.shape != (len(p_ref),):
        raise ValueError(f"y_true must have shape ({len(p_ref)},), got {y_true.shape}")
    ref_ok = p_ref.argmax(axis=1) == y_true
    cand_ok = p_cand.argmax(axis=1) == y_true
    return ref_ok & ~cand_ok, ~ref_ok & cand_ok


def mean_kl_divergence(p_ref, p_cand, eps: float = 1e-12) -> float:
    """Mean over examples of KL(reference || candidate), in nats, >= 0.

    KL(p || q) = sum_k p_k log(p_k / q_k); terms with p_k = 0 are 0 and q is
    clipped to ``[eps, 1]`` so that a zero candidate probability gives a
    large finite value.
    """
    return float(np.mean(kl_divergence(p_ref, p_cand, eps)))


def kl_divergence(p_ref, p_cand, eps: float = 1e-12) -> np.ndarray:
    """Per-example KL(reference || candidate), shape (n,), in nats, >= 0."""
    p_ref, p_cand = _check_pair(p_ref, p_cand)
    q = np.clip(p_cand, eps, 1.0)
    safe_p = np.where(p_ref > 0, p_ref, 1.0)
    terms = np.where(p_ref > 0, p_ref * (np.log(safe_p) - np.log(q)), 0.0)
    return terms.sum(axis=1)


def mcnemar_test(y_true, p_ref, p_cand) -> dict:
    """Exact McNemar test of equal accuracy on paired predictions.

    Under H0 the discordant pairs split evenly; the p-value is the two-sided
    exact binomial test of b successes in b + c trials with p = 0.5
    (McNemar 1947; exact form as in Fagerland et al. 2013).

    Returns
    -------
    dict with ``b`` (reference right, candidate wrong), ``c`` (the reverse),
    ``p_value`` in [0, 1] (1.0 when b + c = 0) and ``method``.
    """
    p_ref, p_cand = _check_pair(p_ref, p_cand)
    y_true = np.asarray(y_true)
    ref_ok = p_ref.argmax(axis=1) == y_true
    cand_ok = p_cand.argmax(axis=1) == y_true
    b = int(np.sum(ref_ok & ~cand_ok))
    c = int(np.sum(~ref_ok & cand_ok))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p_value": p, "method": "exact binomial"}
