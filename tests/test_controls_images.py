"""The verdict on image controls whose answer is known (see tests/controls.py), and an image report."""

import json

import numpy as np
import pytest

import controls
import trusteq


@pytest.fixture(scope="module")
def result():
    return controls.run_images()


def test_the_synthetic_images_are_what_the_controls_assume():
    ds = controls.image_dataset()
    m = controls.image_models()
    p = {k: m[k].predict_proba(ds.inputs) for k in m}
    assert ds.kind == "image" and np.mean(p["reference"].argmax(1) == ds.y) == pytest.approx(0.9, abs=0.03)
    assert np.array_equal(p["reference"], p["other_reasons"])  # same probabilities, read from the other half
    assert np.array_equal(p["reference"].argmax(1), p["temperature"].argmax(1))
    assert 0.1 < np.mean(p["reference"].argmax(1) != p["accuracy_drop"].argmax(1)) < 0.2
    # an erased marker votes 0: the image's mean colour is below the mid-grey threshold
    assert max(float(im.mean()) for im in ds.inputs) < 75


@pytest.mark.slow
def test_identical_copy_is_equivalent_everywhere(result):
    overall, dims = controls.decisions(result, "identical")
    assert overall == "equivalent", dims
    assert set(dims) == {"predictions", "calibration", "explanations.lime", "explanations.shap"}
    c = result["comparisons"]["identical"]
    assert c["explain_stop"] == "decided" and 0 < c["explained_examples"] < 600
    # every SHAP explanation exact on the 7 x 7 quadtree (1,804 evaluations within the 2,000 budget)
    assert result["settings"]["explain_exact"]["shap"]["budget_limited"] == 0


@pytest.mark.slow
def test_temperature_scaled_copy_same_predictions_other_calibration(result):
    overall, dims = controls.decisions(result, "temperature")
    assert (dims["predictions"], dims["calibration"], overall) == ("equivalent", "not equivalent", "not equivalent")
    assert result["comparisons"]["temperature"]["explained_examples"] == 0


@pytest.mark.slow
def test_an_image_decided_by_another_region_is_caught(result):
    overall, dims = controls.decisions(result, "other_reasons")
    assert dims["predictions"] == "equivalent" and dims["calibration"] == "equivalent"
    assert dims["explanations.lime"] == "not equivalent" and dims["explanations.shap"] == "not equivalent"
    assert overall == "not equivalent" and result["comparisons"]["other_reasons"]["explained_examples"] == 50


@pytest.mark.slow
def test_accuracy_drop(result):
    overall, dims = controls.decisions(result, "accuracy_drop")
    assert dims["predictions"] == "not equivalent" and overall == "not equivalent"


def test_an_image_report_shows_heatmaps_and_regions(tmp_path):
    m = controls.image_models()
    data = controls.image_dataset(80)
    result = trusteq.compare(m["reference"], [m["identical"], m["other_reasons"]], data, task=data.task,
                             explainers=["lime"], explain_limit=10, explain_all=True, lime_samples=100,
                             progress=False)
    trusteq.write_report(result, tmp_path)
    assert result["data"]["texts"] == "image"
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="heat"') == 3 * 10 and "outlined regions" in html
    first = json.loads((tmp_path / "explanations.jsonl").read_text().splitlines()[0])
    assert len(first["features"]) == 49 and set(first["features"][0]) == {"region", "row", "col", "height", "width",
                                                                           "weight"}
    # the view leads with the example where a candidate agrees least: other_reasons reads the other half
    assert "cosine (other_reasons)" in html.split('class="ex"')[1]
