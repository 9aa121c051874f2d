"""compare(..., protocol="paper"): the authors' explanations, wired into compare, the report, the CLI and the gate."""

import json

import numpy as np
import pytest

import trusteq
from conftest import assert_reports_equal
from trusteq.cli import main
from trusteq.protocols import PAPER_REASON
from trusteq.explain import _paper_cached, paper_jaccard
from trusteq.metrics.verdict import INCONCLUSIVE, dimension, redecide, undecided, verdict

EXPLAINERS = ("lime", "shap")
SMALL = dict(task="nli", protocol="paper", limit=40, explainers=list(EXPLAINERS), lime_samples=60, shap_evals=60,
             explain_limit=5, n_boot=100, progress=False)


def counting(monkeypatch) -> list:
    """Record every call of the paper's explainers (one per model and example)."""
    calls = []
    for name, run in list(_paper_cached._RUNNERS.items()):
        def counted(fn, examples, *args, _run=run, _name=name):
            calls.append((_name, [e.id for e in examples]))
            return _run(fn, examples, *args)
        monkeypatch.setitem(_paper_cached._RUNNERS, name, counted)
    return calls


@pytest.fixture(scope="module")
def paper_run(nli_models, shared_data, tmp_path_factory):
    """A paper-protocol comparison of a smaller model and an identical copy of the reference, with its report,
    and a copy-only report (served from the same cache) for the gate."""
    ref, small = str(nli_models["ref"]), str(nli_models["small"])
    data = shared_data / "snli/test.tsv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTEQ_CACHE_DIR", str(tmp_path_factory.mktemp("paper-cache")))
        result = trusteq.compare(ref, [small, ref], data, names=["ref", "small", "copy"], **SMALL)
        out = trusteq.write_report(result, tmp_path_factory.mktemp("paper-report")).parent
        calls = counting(mp)
        gate_out = tmp_path_factory.mktemp("paper-gate")
        assert main(["compare", "--reference", ref, "--candidate", ref, "--name", "ref", "--name", "copy", "--data",
                     str(data), "--task", "nli", "--protocol", "paper", "--limit", "40", "--explain-limit", "5",
                     "--lime-samples", "60", "--shap-evals", "60", "--bootstrap", "100", "--no-progress",
                     "--out", str(gate_out)]) == 0
    return {"result": result, "out": out, "gate_report": gate_out / "report.json", "gate_calls": calls}


@pytest.mark.slow
def test_report_records_the_protocol_and_the_papers_jaccard(paper_run):
    r, out = paper_run["result"], paper_run["out"]
    report = json.loads((out / "report.json").read_text())
    s = report["settings"]
    assert s["protocol"] == "paper" and s["paper_measure"] == "paper_jaccard@10" and s["verdict_measure"] is None
    assert s["explain_seeds"] == {"reference": [[0, 1]], "candidates": [[1]], "alignment": [[0, 1]],
                                  "noise_floor": [[0, 1]]}
    for explainer in EXPLAINERS:
        result = r.explanations[explainer]
        assert [(x.model, x.seed) for x in result.runs] == [("ref", 0), ("ref", 1), ("small", 1), ("copy", 1)]
        ref0, ref1 = result.run("ref", 0).explanations, result.run("ref", 1).explanations
        cand = result.run("small", 1).explanations
        jaccard = lambda a, b: [paper_jaccard(x.pairs, y.pairs, "nli", explainer, 10) for x, y in zip(a, b)]  # noqa
        summary = report["comparisons"]["small"]["alignment"][explainer]["paper_jaccard@10"]
        assert summary["mean"] == pytest.approx(np.mean(jaccard(ref0, cand))) and summary["n"] == 5
        assert summary["ci"][0] <= summary["mean"] <= summary["ci"][1]
        floor = report["noise_floor"][explainer]["paper_jaccard@10"]
        assert floor["mean"] == pytest.approx(np.mean(jaccard(ref0, ref1)))
        assert set(report["comparisons"]["small"]["alignment"][explainer]) == {"paper_jaccard@10"}
        assert "noise_floor" not in report["comparisons"]["small"]  # the authors measured no candidate floors
        assert all(e.explained_class == t.explained_class for e, t in zip(cand, ref0))


@pytest.mark.slow
def test_an_identical_copy_scores_the_floor(paper_run):
    report = json.loads((paper_run["out"] / "report.json").read_text())
    for explainer in EXPLAINERS:
        copy = report["comparisons"]["copy"]["alignment"][explainer]["paper_jaccard@10"]
        assert copy["mean"] == pytest.approx(report["noise_floor"][explainer]["paper_jaccard@10"]["mean"])


@pytest.mark.slow
def test_explanation_dimensions_are_inconclusive_with_the_reason(paper_run):
    report = json.loads((paper_run["out"] / "report.json").read_text())
    for name in ("small", "copy"):
        dims = report["comparisons"][name]["verdict"]["dimensions"]
        for explainer in EXPLAINERS:
            d = dims[f"explanations.{explainer}"]
            assert d["decision"] == INCONCLUSIVE and d["reason"] == PAPER_REASON and d["interval"] is None
            assert all(p["reason"] == PAPER_REASON and p["interval"] is None for p in d["parts"].values())
        for decided in ("predictions", "calibration"):  # decided as usual
            assert all(len(p["interval"]) == 2 for p in dims[decided]["parts"].values())
    assert report["comparisons"]["copy"]["verdict"]["overall"] == INCONCLUSIVE


@pytest.mark.slow
def test_report_files_show_the_papers_measure(paper_run):
    out = paper_run["out"]
    md = (out / "report.md").read_text()
    assert "the authors' protocol and measure, descriptive" in md and "the paper's Jaccard@10" in md
    assert "| lime | noise floor: ref vs itself |" in md and PAPER_REASON in md
    page = (out / "report.html").read_text()
    assert "Not shown under the paper protocol" in page and 'class="w top"' not in page
    lines = [json.loads(x) for x in (out / "explanations.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 4 * 5 and {x["protocol"] for x in lines} == {"paper"}
    assert all(set(f) == {"word", "weight"} for x in lines for f in x["features"])
    assert (out / "alignment.png").stat().st_size > 0


@pytest.mark.slow
def test_gate_on_a_paper_report(paper_run, capsys):
    report = paper_run["gate_report"]
    assert paper_run["gate_calls"] == []  # every explanation came from the cache
    capsys.readouterr()
    assert main(["gate", str(report)]) == 1
    assert "explanations.lime inconclusive" in capsys.readouterr().out
    # an untested (descriptive) part is no evidence: --allow-inconclusive does not pass it
    assert main(["gate", str(report), "--allow-inconclusive"]) == 1
    assert "untested" in capsys.readouterr().out
    # a stricter margin decides the tested parts again and leaves the untested ones as they are
    assert main(["gate", str(report), "--margin", "explanation=0.01", "--margin", "accuracy=0.005"]) == 1


@pytest.mark.slow
def test_a_second_identical_call_is_served_from_the_cache(nli_models, shared_data, monkeypatch):
    args = (str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv")
    kwargs = {**SMALL, "explain_limit": 3, "explainers": ["lime"]}
    calls = counting(monkeypatch)
    first = trusteq.compare(*args, **kwargs)
    assert len(calls) == 3 * 3  # ref@0, ref@1, small@1 on 3 examples
    calls.clear()
    second = trusteq.compare(*args, **kwargs)
    assert calls == []
    for run in first.explanations["lime"].runs:
        again = second.explanations["lime"].run(run.model, run.seed).explanations
        assert [x.pairs for x in run.explanations] == [y.pairs for y in again]
    assert_reports_equal(first.summary, second.summary)


@pytest.mark.slow
def test_pi_runs_with_both_explainers(pi_models, shared_data):
    r = trusteq.compare(str(pi_models["ref"]), [str(pi_models["small"])], shared_data / "mrpc_glue/test.tsv",
                        **{**SMALL, "task": "pi", "lime_samples": 30, "shap_evals": 20, "explain_limit": 3})
    for explainer in EXPLAINERS:
        result = r.explanations[explainer]
        ref0, ref1 = result.run("ref", 0).explanations, result.run("ref", 1).explanations
        expected = np.mean([paper_jaccard(x.pairs, y.pairs, "pi", explainer) for x, y in zip(ref0, ref1)])
        assert r["noise_floor"][explainer]["paper_jaccard@10"]["mean"] == pytest.approx(expected)
    # PI SHAP's Permutation spends at least 2d + 1 evaluations whatever the budget
    assert r["settings"]["explain_exact"]["shap"]["evaluations_max"] > 20


def test_the_paper_protocol_refuses_other_explainers_and_unknown_protocols(tmp_path, capsys):
    code = main(["compare", "--reference", "r", "--candidate", "c", "--data", "d.tsv", "--task", "nli",
                 "--protocol", "paper", "--explainers", "shap-permutation", "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "shap-permutation" in err and "--protocol paper" in err
    with pytest.raises(ValueError, match="unknown protocol 'authors'"):
        trusteq.compare("r", ["c"], "d.tsv", "nli", protocol="authors")


def test_an_untested_part_combines_and_survives_redecide():
    acc = {"decision": "equivalent", "statistic": 0.0, "interval": [-0.004, 0.004], "margin": 0.01,
           "test": "non-inferiority", "n": 500, "alpha": 0.05, "anytime": False, "margin_name": "accuracy"}
    stored = verdict({"predictions": dimension({"accuracy": acc}),
                      "explanations.lime": dimension({"paper_jaccard@10": undecided(
                          "descriptive", margin=0.05, test="non-inferiority", n=5, margin_name="explanation")})})
    assert stored["overall"] == INCONCLUSIVE
    assert stored["dimensions"]["explanations.lime"]["reason"] == "descriptive"
    again = redecide(stored, {"explanation": 0.01, "accuracy": 0.002})
    assert again["dimensions"]["predictions"]["decision"] == INCONCLUSIVE
    assert again["dimensions"]["explanations.lime"] == stored["dimensions"]["explanations.lime"]
    with pytest.raises(ValueError, match="looser"):
        redecide(stored, {"explanation": 0.1})
    with pytest.raises(ValueError):
        undecided("x", margin=0, test="non-inferiority", n=1)
