"""trusteq: is a compressed model trust-equivalent to its reference model?

Compares a reference model with candidate models on labelled sentence pairs:
calibration (ECE, MCE, Brier, NLL, reliability diagrams), prediction agreement
(agreement, flips, KL divergence, McNemar) and explanation alignment (LIME and
SHAP top-k Jaccard and related metrics, judged against a noise floor).

>>> import trusteq
>>> result = trusteq.compare("ref_dir", ["small_dir"], "snli/test.tsv", task="nli", limit=200)  # doctest: +SKIP
>>> trusteq.write_report(result, "out")  # doctest: +SKIP
"""

from . import images  # noqa: F401 - registers the image readers with load_dataset (trusteq.data.READERS)
from .comparison import compare
from .data import ColumnMap, Dataset, Example, load_dataset
from .errors import DataError, LabelError, ModelError, SettingsError, TrustEqError
from .external import PredictionsFile
from .models import CallableClassifier, HFClassifier, ONNXClassifier, load_model
from .report import write_report
from .results import CompareResult
from .settings import CompareSettings
from .trust_search import search

__version__ = "0.1.0"

__all__ = [
    "compare", "search", "CompareSettings", "CompareResult", "write_report", "load_dataset", "Dataset", "Example", "ColumnMap",
    "load_model", "PredictionsFile",
    "HFClassifier", "ONNXClassifier", "CallableClassifier", "TrustEqError", "DataError", "LabelError", "ModelError",
    "SettingsError",
]
