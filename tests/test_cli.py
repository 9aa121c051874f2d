"""End to end: the CLI and the Python API on tiny models and real shared data."""

import json
import subprocess
import sys

import numpy as np
import pytest

import trusteq
from conftest import assert_reports_equal
from trusteq.cli import main
from trusteq.report import OUTPUT_FILES


def run_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def snli_run(nli_models, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    code = run_cli("compare", "--reference", nli_models["ref"], "--candidate", nli_models["small"],
                   "--candidate", nli_models["shuffled"], "--data", shared_data / "snli/test.tsv", "--task", "nli",
                   "--limit", 120, "--explain-limit", 6, "--lime-samples", 120, "--shap-evals", 120,
                   "--bootstrap", 200, "--top-k", "5,10", "--explain-all", "--no-progress", "--out", out)
    assert code == 0
    return out


@pytest.mark.slow
def test_all_outputs_written(snli_run):
    for name in OUTPUT_FILES:
        assert (snli_run / name).stat().st_size > 0, name


@pytest.mark.slow
def test_report_json_keys(snli_run):
    r = json.loads((snli_run / "report.json").read_text())
    assert r["task"] == "nli" and r["seed"] == 0
    assert r["reference"] == "ref" and r["candidates"] == ["small", "shuffled"]
    for name, m in r["models"].items():
        for key in ("accuracy", "brier", "nll"):
            assert 0 <= m[key]["value"] and len(m[key]["ci"]) == 2
        for key in ("ece", "mce"):
            assert set(m[key]) == {"equal_width", "equal_mass"}
        assert m["fingerprint"] and m["parameters"] > 0
    assert r["models"]["ref"]["role"] == "reference"
    c = r["comparisons"]["small"]
    assert {"agreement", "flip_rate", "kl", "mcnemar", "delta", "alignment"} <= set(c)
    for explainer in ("lime", "shap"):
        a = c["alignment"][explainer]["jaccard@10"]
        assert 0 <= a["mean"] <= 1 and a["ci"][0] <= a["mean"] <= a["ci"][1]
        assert "jaccard@5" in c["alignment"][explainer]
        assert "jaccard@10" in r["noise_floor"][explainer]
    s = r["settings"]
    assert s["n_bins"] == 10 and s["binning"] == ["equal_width", "equal_mass"]
    assert s["lime_samples"] == 120 and s["explained_examples"] == 6
    assert r["data"]["sha256"] and r["data"]["examples"] == 120 and r["data"]["rows"] == 9824
    assert r["versions"]["torch"] == "2.13.0+cpu" or r["versions"]["torch"].startswith("2.13.0")


@pytest.mark.slow
def test_predictions_csv(snli_run):
    lines = (snli_run / "predictions.csv").read_text().splitlines()
    assert lines[0] == "example_id,model,label,prob_entailment,prob_neutral,prob_contradiction"
    assert len(lines) == 1 + 120 * 3
    row = lines[1].split(",")
    assert row[1] in ("ref", "small", "shuffled") and abs(sum(map(float, row[3:])) - 1) < 1e-9


@pytest.mark.slow
def test_explanations_jsonl_recomputes_alignment(snli_run):
    """Jaccard@10 of the small model's LIME runs, recomputed from explanations.jsonl with the set definition."""
    recs = [json.loads(line) for line in (snli_run / "explanations.jsonl").read_text().splitlines()]
    # 6 examples x (reference twice, each candidate twice) x 2 explainers
    assert len(recs) == 6 * 6 * 2
    by = {(r["example_id"], r["model"], r["explainer"], r["seed"]): r for r in recs}
    report = json.loads((snli_run / "report.json").read_text())

    def top10(weights):
        """The 10 largest |w| as a set, refusing a tie across the boundary (it would make the set random)."""
        order = sorted(range(len(weights)), key=lambda i: -abs(weights[i]))
        assert abs(weights[order[9]]) != abs(weights[order[10]]), "tie at the top-10 boundary"
        return set(order[:10])

    values = []
    for (ex, model, explainer, seed), rec in by.items():
        if model == "small" and explainer == "lime" and seed == 1:  # alignment: reference@0 vs candidate@1
            ref = by[(ex, "ref", "lime", 0)]
            assert [(f["word"], f["sentence"], f["position"]) for f in ref["features"]] == \
                   [(f["word"], f["sentence"], f["position"]) for f in rec["features"]]
            if len(rec["features"]) <= 10:  # top-10 metrics are undefined (NaN) for d <= k
                continue
            a, b = top10([f["weight"] for f in ref["features"]]), top10([f["weight"] for f in rec["features"]])
            values.append(len(a & b) / len(a | b))
    summary = report["comparisons"]["small"]["alignment"]["lime"]["jaccard@10"]
    assert values and summary["n"] == len(values)
    assert summary["mean"] == pytest.approx(np.mean(values))


@pytest.mark.slow
def test_one_seed_wording(snli_run):
    for name in ("report.md", "report.html"):
        assert "the candidates with seeds 1 and 2: a candidate" in (snli_run / name).read_text()


@pytest.mark.slow
def test_html_is_self_contained(snli_run):
    page = (snli_run / "report.html").read_text()
    assert "data:image/png;base64," in page and "<script src" not in page and "href=\"http" not in page
    assert "Per-example view" in page and 'class="w top"' in page


@pytest.mark.slow
def test_second_run_reuses_cache_and_is_identical(nli_models, shared_data, tmp_path):
    kwargs = dict(task="nli", limit=40, explainers=["lime"], lime_samples=60, explain_limit=3, explain_all=True,
                  n_boot=100, progress=False)
    a = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv", **kwargs)
    b = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv", **kwargs)
    assert_reports_equal(a.to_dict(), b.to_dict())
    assert a["comparisons"]["small"]["agreement"]["value"] == b["comparisons"]["small"]["agreement"]["value"]


@pytest.mark.slow
def test_explain_reference_prediction(nli_models, shared_data):
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv", task="nli",
                        limit=30, explainers=["lime"], lime_samples=40, explain_limit=4, explain_class="reference",
                        explain_all=True, n_boot=50, progress=False)
    preds = r.probs["ref"].argmax(axis=1)
    index = {ex_id: i for i, ex_id in enumerate(r.dataset.ids)}
    for e in r.explanations["lime"].run("ref", seed=0).explanations:
        assert e.explained_class == preds[index[e.example_id]]


@pytest.mark.slow
def test_pi_task_on_mrpc(pi_models, shared_data, tmp_path):
    code = run_cli("compare", "--reference", pi_models["ref"], "--candidate", pi_models["small"], "--data",
                   shared_data / "mrpc_glue/test.tsv", "--task", "pi", "--limit", 50, "--explainers", "lime",
                   "--explain-limit", 3, "--explain-all", "--lime-samples", 50, "--bootstrap", 50, "--no-progress",
                   "--out", tmp_path)
    assert code == 0
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["labels"] == ["not_paraphrase", "paraphrase"]


# ---- bad input: one line, exit code 2, nothing written ---------------------


def _fails(capsys, out, *args):
    code = run_cli("compare", *args, "--no-progress", "--out", out)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("trusteq: error: ")
    assert not out.exists()
    return err[0]


def test_error_missing_column(nli_models, tmp_path, capsys):
    f = tmp_path / "d.csv"
    f.write_text("s1,s2,y\nA man.,A dog.,entailment\n")
    msg = _fails(capsys, tmp_path / "out", "--reference", nli_models["ref"], "--candidate", nli_models["small"],
                 "--data", f, "--task", "nli", "--text-a", "s1", "--text-b", "hyp", "--label", "y")
    assert str(f) in msg and "row 1" in msg and "'hyp'" in msg


def test_error_unknown_label_and_empty_text(nli_models, tmp_path, capsys):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA man.\tA dog.\t5\n")
    msg = _fails(capsys, tmp_path / "o1", "--reference", nli_models["ref"], "--candidate", nli_models["small"],
                 "--data", f, "--task", "nli")
    assert "row 2" in msg and "field 'label'" in msg
    f.write_text("premise\thypothesis\tlabel\nA man.\t \t1\n")
    msg = _fails(capsys, tmp_path / "o2", "--reference", nli_models["ref"], "--candidate", nli_models["small"],
                 "--data", f, "--task", "nli")
    assert "row 2" in msg and "field 'hypothesis'" in msg and "empty text" in msg


def test_error_unreadable_file(nli_models, tmp_path, capsys):
    msg = _fails(capsys, tmp_path / "out", "--reference", nli_models["ref"], "--candidate", nli_models["small"],
                 "--data", tmp_path / "missing.tsv", "--task", "nli")
    assert "missing.tsv" in msg and "no such file" in msg


def test_error_model_label_mismatch(nli_models, pi_models, shared_data, tmp_path, capsys):
    msg = _fails(capsys, tmp_path / "out", "--reference", nli_models["ref"], "--candidate", pi_models["small"],
                 "--data", shared_data / "snli/test.tsv", "--task", "nli", "--limit", 10)
    assert "model 'small'" in msg and "2 classes" in msg
    msg = _fails(capsys, tmp_path / "out", "--reference", nli_models["ref"], "--candidate", nli_models["generic"],
                 "--data", shared_data / "snli/test.tsv", "--task", "nli", "--limit", 10)
    assert "--label-map generic=" in msg


def test_label_map_option(nli_models, shared_data, tmp_path):
    code = run_cli("compare", "--reference", nli_models["ref"], "--candidate", nli_models["generic"], "--label-map",
                   "generic=entailment,neutral,contradiction", "--data", shared_data / "snli/test.tsv", "--task",
                   "nli", "--limit", 20, "--explainers", "none", "--bootstrap", 20, "--no-progress", "--out", tmp_path)
    assert code == 0
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["models"]["generic"]["label_map"] == ["entailment", "neutral", "contradiction"]
    assert r["noise_floor"] == {} and "alignment" not in r["comparisons"]["generic"]


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "trusteq", "compare", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for opt in ("--reference", "--candidate", "--data", "--task", "--limit", "--explainers", "--lime-samples",
                "--shap-evals", "--top-k", "--n-bins", "--seed", "--out", "--label-map", "--text-a", "--no-header",
                "--label-names", "--explain-class", "--explain-limit", "--max-length", "--offline"):
        assert opt in out.stdout


def test_skip_invalid_reports_dropped_rows(nli_models, tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA man sleeps.\tA man rests.\t0\nA dog.\t \t1\n"
                 "Two kids play.\tChildren play.\t0\nA cat.\tAn animal.\t7\n")
    out = tmp_path / "out"
    code = run_cli("compare", "--reference", nli_models["ref"], "--candidate", nli_models["small"], "--data", f,
                   "--task", "nli", "--skip-invalid", "--explainers", "none", "--bootstrap", "20", "--no-progress",
                   "--out", out)
    assert code == 0
    r = json.loads((out / "report.json").read_text())
    assert r["data"]["examples"] == 2 and r["data"]["rows"] == 4
    assert [(d["row"], d["id"], d["field"]) for d in r["data"]["dropped"]] == [(3, "1", "hypothesis"),
                                                                                (5, "3", "label")]
    assert "2 invalid rows were dropped" in (out / "report.md").read_text()


@pytest.mark.slow
def test_explain_repeats_use_disjoint_seeds_and_floors_for_every_model(nli_models, shared_data, tmp_path):
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv", task="nli",
                        limit=30, explainers=["lime", "shap"], lime_samples=40, shap_evals=400, explain_limit=10,
                        explain_repeats=3, explain_all=True, n_boot=50, progress=False)
    s = r.summary["settings"]
    assert s["explain_seeds"]["noise_floor"] == [[0, 1], [3, 4], [6, 7]]
    assert s["explain_seeds"]["candidate_floor"] == [[1, 2], [4, 5], [7, 8]]
    lime = r.explanations["lime"]
    # repeat r: reference at 3r and 3r + 1, candidate at 3r + 1 and 3r + 2; no run is shared between repeats
    assert [(x.model, x.role, x.seed) for x in lime.runs] == [
        (m, role, 3 * rep + k) for rep in range(3)
        for m, role, k in (("ref", "reference", 0), ("ref", "reference", 1), ("small", "candidate", 1),
                           ("small", "candidate", 2))]
    assert lime.alignment("small").seeds == [(0, 1), (3, 4), (6, 7)]
    assert lime.candidate_floor("small").seeds == [(1, 2), (4, 5), (7, 8)]
    run = lambda m, seed: lime.run(m, seed).explanations  # noqa: E731
    assert all(e.seed == 7 for e in run("small", 7))

    def cosines(x, y):
        return [float(a.weights @ b.weights / np.linalg.norm(a.weights) / np.linalg.norm(b.weights))
                for a, b in zip(x, y)]
    cross = [cosines(run("ref", 3 * k), run("small", 3 * k + 1)) for k in range(3)]
    a = r["comparisons"]["small"]["alignment"]["lime"]["cosine"]
    assert a["repeat_means"] == pytest.approx([np.mean(v) for v in cross])
    assert a["repeat_variance"] == pytest.approx(np.var([np.mean(v) for v in cross], ddof=1))
    assert a["mean"] == pytest.approx(np.mean(cross))
    own = r["comparisons"]["small"]["noise_floor"]["lime"]["cosine"]
    assert own["repeat_means"][2] == pytest.approx(np.mean(cosines(run("small", 7), run("small", 8))))
    floor = r["noise_floor"]["lime"]["cosine"]
    assert floor["repeat_means"][1] == pytest.approx(np.mean(cosines(run("ref", 3), run("ref", 4))))
    agreement = r["comparisons"]["small"]["verdict"]["dimensions"]["explanations.lime"]["parts"]["agreement"]
    floor_ref = np.mean([cosines(run("ref", 3 * k), run("ref", 3 * k + 1)) for k in range(3)], axis=0)
    floor_small = np.mean([cosines(run("small", 3 * k + 1), run("small", 3 * k + 2)) for k in range(3)], axis=0)
    assert agreement["floors"] == pytest.approx({"reference": np.mean(floor_ref), "candidate": np.mean(floor_small)})
    if min(np.mean(floor_ref), np.mean(floor_small)) < 0.5:  # LIME at 40 samples: too noisy to correct for
        assert agreement["statistic"] is None and agreement["reason"].startswith("explainer too noisy")
    else:
        delta = np.mean(np.mean(cross, axis=0)) / np.mean((floor_ref + floor_small) / 2) - 1
        assert agreement["statistic"] == pytest.approx(delta)
    # SHAP follows the same seeds; an exact explanation is shared by every seed, an estimated one is seeded
    shap = r.explanations["shap"]
    assert [(x.model, x.seed) for x in shap.runs] == [(x.model, x.seed) for x in lime.runs]
    from trusteq.explain import REGISTRY

    pairs = list(zip(shap.run("small", 1).explanations, shap.run("small", 2).explanations))
    exact = [REGISTRY["shap"].exact(x.features, 400) for x, _ in pairs]
    assert any(exact) and not all(exact), exact  # both kinds among the 10 explained pairs
    for x, y in pairs:
        assert np.array_equal(x.weights, y.weights) == REGISTRY["shap"].exact(x.features, 400)
    record = r["settings"]["explain_exact"]["shap"]
    assert (record["exact"], record["budget_limited"]) == (sum(exact), 10 - sum(exact))
    assert record["evaluations_max"] <= 400
    from trusteq.report import write_report

    md = (write_report(r, tmp_path / "rep").parent / "report.md").read_text()
    assert "repeated 3 times with disjoint seeds" in md and "sd over seeds" in md
    assert "noise floor: small vs itself (3 seeds)" in md


@pytest.mark.slow
def test_shap_resumes_from_a_partly_filled_cache(nli_models, shared_data, monkeypatch):
    from trusteq import cache
    from trusteq.explain import _cached

    kwargs = dict(task="nli", limit=30, explainers=["shap"], shap_evals=40, explain_limit=5, explain_all=True,
                  n_boot=50, progress=False)
    args = (str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv")
    first = trusteq.compare(*args, **kwargs)
    # forget two of the candidate's explanations, as if a run had been killed mid-way
    lost = first.explanations["shap"].run("small", seed=1).explanations[1:3]
    removed = 0
    for path in (cache.cache_dir() / "explanations").rglob("*.npz"):
        weights = np.load(path)["weights"]
        if any(np.array_equal(weights, e.weights) for e in lost):
            path.unlink()
            removed += 1
    assert removed == 2
    calls = []
    real = _cached.explain_examples
    monkeypatch.setattr(_cached, "explain_examples",
                        lambda models, examples, *a, **kw: calls.append((sorted(models), [e.id for e in examples]))
                        or real(models, examples, *a, **kw))
    second = trusteq.compare(*args, **kwargs)
    assert calls == [(["small"], [e.example_id]) for e in lost]  # only what was lost
    for run in first.explanations["shap"].runs:
        again = second.explanations["shap"].run(run.model, run.seed).explanations
        for x, y in zip(run.explanations, again):
            assert x.example_id == y.example_id and np.array_equal(x.weights, y.weights)


@pytest.mark.slow
def test_margins_and_alpha_reach_the_verdict_and_the_gate(pi_models, shared_data, tmp_path, capsys):
    code = run_cli("compare", "--reference", pi_models["ref"], "--candidate", pi_models["ref"], "--name", "ref",
                   "--name", "copy", "--data", shared_data / "mrpc_glue/test.tsv", "--task", "pi", "--limit", 400,
                   "--explainers", "none", "--margin", "accuracy=0.02", "--margin", "flip_rate=0.03", "--alpha", "0.1",
                   "--bootstrap", 50, "--no-progress", "--out", tmp_path)
    assert code == 0
    r = json.loads((tmp_path / "report.json").read_text())
    s = r["settings"]
    assert s["alpha"] == 0.1 and s["verdict_level"] == pytest.approx(0.8)
    assert s["margins"]["accuracy"] == 0.02 and s["margins"]["flip_rate"] == 0.03 and s["margins"]["brier"] == 0.02
    v = r["comparisons"]["copy"]["verdict"]
    assert v["overall"] == "equivalent" and set(v["dimensions"]) == {"predictions", "calibration"}
    assert v["dimensions"]["predictions"]["parts"]["accuracy"]["margin"] == 0.02
    assert (tmp_path / "report.md").read_text().startswith("# May copy replace ref? copy: equivalent")
    capsys.readouterr()
    assert main(["gate", str(tmp_path / "report.json")]) == 0
    assert capsys.readouterr().out.startswith("PASS copy: equivalent")
    assert main(["gate", str(tmp_path / "report.json"), "--margin", "accuracy=0.0001"]) == 1


def test_unknown_margin_name_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--reference", "r", "--candidate", "c", "--data", "d", "--task", "pi", "--margin", "acc=1",
              "--out", "x"])
    assert exc.value.code == 2 and "NAME=VALUE" in capsys.readouterr().err
