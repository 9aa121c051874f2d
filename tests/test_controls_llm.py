"""The verdict on the controls as prompted LLMs (tests/controls.py: hand-set one-layer Llamas reading keywords
through a prompt template and label words): each known answer, as for the encoders' controls."""

import numpy as np
import pytest

import controls
from trusteq.llm import CausalLMClassifier, PromptSpec


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return controls.llm_models(tmp_path_factory.mktemp("llm-controls"))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return controls.run_llm(tmp_path_factory.mktemp("llm-controls-run"), lime_samples=300, shap_evals=300)


def test_the_llm_controls_read_what_they_are_built_to_read(paths):
    """Through the template and label words: 9:1 odds on three keywords, T = 2 exactly, B instead of A with the
    same probabilities, about one prediction in five reversed; the prompts' shared prefix is cached."""
    ds = controls.dataset(300)
    spec = PromptSpec(controls.LLM_TEMPLATE, controls.LLM_LABEL_WORDS)
    models = {k: CausalLMClassifier(v, spec, device="cpu", batch_size=64) for k, v in paths.items()}
    p = {k: m.predict_proba(ds.pairs) for k, m in models.items()}
    np.testing.assert_allclose(p["reference"].max(1), 0.9, atol=1e-4)
    assert np.mean(p["reference"].argmax(1) == ds.y) == pytest.approx(0.9, abs=0.04)
    np.testing.assert_array_equal(p["reference"], p["identical"])
    np.testing.assert_allclose(p["reference"], p["other_reasons"], atol=1e-6)
    logit = lambda q: np.log(q[:, 1] / q[:, 0])  # noqa: E731
    np.testing.assert_allclose(logit(p["temperature"]), logit(p["reference"]) / 2, atol=1e-4)
    assert 0.1 < np.mean(p["reference"].argmax(1) != p["accuracy_drop"].argmax(1)) < 0.3
    assert len(models["reference"]._prefix()) >= 8 and not models["reference"].chat_template


@pytest.mark.slow
def test_identical_llm_is_equivalent_everywhere(result):
    overall, dims = controls.decisions(result, "identical")
    assert overall == "equivalent", dims
    assert set(dims) == {"predictions", "calibration", "explanations.lime", "explanations.shap"}
    c = result["comparisons"]["identical"]
    assert c["explain_stop"] == "decided" and 0 < c["explained_examples"] < 400
    assert result["models"]["identical"]["kind"] == "causal-lm"


@pytest.mark.slow
def test_temperature_scaled_llm_same_predictions_other_calibration(result):
    overall, dims = controls.decisions(result, "temperature")
    assert dims["predictions"] == "equivalent" and dims["calibration"] == "not equivalent"
    assert overall == "not equivalent"
    assert result["comparisons"]["temperature"]["explained_examples"] == 0


@pytest.mark.slow
def test_llm_with_the_same_predictions_for_other_reasons(result):
    overall, dims = controls.decisions(result, "other_reasons")
    assert dims["predictions"] == "equivalent" and dims["calibration"] == "equivalent"
    assert dims["explanations.lime"] == "not equivalent" and dims["explanations.shap"] == "not equivalent"
    assert overall == "not equivalent"


@pytest.mark.slow
def test_llm_accuracy_drop(result):
    overall, dims = controls.decisions(result, "accuracy_drop")
    assert dims["predictions"] == "not equivalent" and overall == "not equivalent"
    acc = result["comparisons"]["accuracy_drop"]["verdict"]["dimensions"]["predictions"]["parts"]["accuracy"]
    assert acc["interval"][1] < -0.05
