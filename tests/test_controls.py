"""The verdict on controls whose answer is known (see tests/controls.py)."""

import numpy as np
import pytest

import controls


@pytest.fixture(scope="module")
def result():
    return controls.run()


def test_the_synthetic_data_is_what_the_controls_assume():
    ds = controls.dataset()
    m = controls.models()
    p = {k: m[k].predict_proba(ds.pairs) for k in m}
    assert np.mean(p["reference"].argmax(1) == ds.y) == pytest.approx(0.9, abs=0.03)
    assert np.array_equal(p["reference"], p["other_reasons"])  # same probabilities, other words
    assert np.array_equal(p["reference"].argmax(1), p["temperature"].argmax(1))
    assert 0.1 < np.mean(p["reference"].argmax(1) != p["accuracy_drop"].argmax(1)) < 0.2


@pytest.mark.slow
def test_identical_copy_is_equivalent_everywhere(result):
    overall, dims = controls.decisions(result, "identical")
    assert overall == "equivalent", dims
    assert set(dims) == {"predictions", "calibration", "explanations.lime", "explanations.shap"}
    # sequential: explained block by block until its explanations decide, well before the cap
    c = result["comparisons"]["identical"]
    assert c["explain_stop"] == "decided" and 0 < c["explained_examples"] < 600 and c["explained_examples"] % 50 == 0


@pytest.mark.slow
def test_temperature_scaled_copy_same_predictions_other_calibration(result):
    overall, dims = controls.decisions(result, "temperature")
    assert dims["predictions"] == "equivalent"
    assert dims["calibration"] == "not equivalent"
    assert overall == "not equivalent"
    # its verdict is fixed before any explanation: none is computed, and the explanation dimensions say why
    c = result["comparisons"]["temperature"]
    assert c["explained_examples"] == 0 and c["explain_stop"] == "verdict decided by other dimensions"
    assert c["verdict"]["dimensions"]["explanations.lime"]["reason"] == "no explained examples"


@pytest.mark.slow
def test_same_predictions_for_other_reasons(result):
    overall, dims = controls.decisions(result, "other_reasons")
    assert dims["predictions"] == "equivalent" and dims["calibration"] == "equivalent"
    assert dims["explanations.lime"] == "not equivalent" and dims["explanations.shap"] == "not equivalent"
    assert overall == "not equivalent"
    c = result["comparisons"]["other_reasons"]
    assert c["explain_stop"] == "decided" and c["explained_examples"] == 50  # one block decides it


@pytest.mark.slow
def test_accuracy_drop(result):
    overall, dims = controls.decisions(result, "accuracy_drop")
    assert dims["predictions"] == "not equivalent" and overall == "not equivalent"
    acc = result["comparisons"]["accuracy_drop"]["verdict"]["dimensions"]["predictions"]["parts"]["accuracy"]
    assert acc["interval"][1] < -0.01
