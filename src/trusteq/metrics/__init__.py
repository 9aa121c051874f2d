"""Metrics: pure functions over arrays, no models, no files.

* :mod:`~trusteq.metrics.calibration` - ECE, MCE (equal-width and equal-mass
  bins), Brier score, NLL, class-wise ECE, reliability-diagram bins;
* :mod:`~trusteq.metrics.agreement` - accuracy, agreement rate, flips, KL
  divergence, exact McNemar test;
* :mod:`~trusteq.metrics.alignment` - top-k Jaccard, feature, rank, sign and
  signed-rank agreement, Spearman correlation between attribution vectors;
* :mod:`~trusteq.metrics.stats` - the paired bootstrap shared by every interval.
"""

from .agreement import accuracy, agreement_rate, flip_indicators, flip_rates, kl_divergence, mcnemar_test, \
    mean_kl_divergence
from .alignment import metric_names, pair_metrics, top_k
from .calibration import STRATEGIES, brier_score, classwise_ece, expected_calibration_error, \
    maximum_calibration_error, negative_log_likelihood, reliability_diagram
from .stats import Bootstrap

__all__ = [
    "accuracy", "agreement_rate", "flip_indicators", "flip_rates", "kl_divergence", "mcnemar_test",
    "mean_kl_divergence", "metric_names", "pair_metrics", "top_k", "STRATEGIES", "brier_score", "classwise_ece",
    "expected_calibration_error", "maximum_calibration_error", "negative_log_likelihood", "reliability_diagram",
    "Bootstrap",
]
