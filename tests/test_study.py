"""A study file builds its models once, compares them, and continues where it stopped."""

import json
from pathlib import Path

import pytest

from conftest import PI, make_bert
from trusteq.cli import main
from trusteq.errors import TrustEqError
from trusteq.study import load_study


@pytest.fixture()
def study(tmp_path, shared_data):
    base = make_bert(tmp_path / "enc", ("LABEL_0", "LABEL_1"), seed=5)
    data = tmp_path / "train.tsv"
    lines = (shared_data / "mrpc_glue/train.tsv").read_text().splitlines()[:41]
    data.write_text("\n".join(lines) + "\n")
    f = tmp_path / "s.yaml"
    f.write_text(f"""
seed: 3
out: reports
work: built
experiments:
  tiny:
    task: pi
    train: train.tsv
    test: train.tsv
    models:
      ref: {{finetune: {{base: {base}, epochs: 1, batch_size: 8, learning_rate: 0.001}}}}
      pruned: {{compress: {{model: ref, method: "prune:0.5"}}}}
      short: {{compress: {{model: ref, method: "drop-layers:1", batch_size: 8}}}}
    reference: ref
    candidates: [pruned, short]
    compare: {{explainers: [lime], explain_limit: 3, lime_samples: 40, n_boot: 50}}
""")
    return f


@pytest.mark.slow
def test_study_builds_compares_and_reuses(study, capsys):
    assert main(["study", str(study), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "[1/4] tiny: model ref" in out and "[4/4] tiny: compare ref with pruned, short" in out
    assert out.count("estimated remaining") == 4
    report = json.loads((study.parent / "reports" / "tiny" / "report.json").read_text())
    assert report["seed"] == 3 and report["candidates"] == ["pruned", "short"]
    assert report["study"]["models"]["pruned"]["method"] == "prune:0.5"
    assert report["data"]["examples"] == 40
    built = study.parent / "built" / "tiny" / "ref" / "model.safetensors"
    stamp = built.stat().st_mtime_ns
    assert main(["study", str(study), "--no-progress"]) == 0
    assert built.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert "[1/4] tiny: model ref (built: reused)" in capsys.readouterr().out


@pytest.mark.slow
def test_execution_keys_apply_to_every_stage_and_the_command_line_wins(study, capsys):
    study.write_text("device: cuda:7\nexecutor: local\n" + study.read_text())
    assert main(["study", str(study), "--no-progress"]) == 2
    assert "device 'cuda:7' requested but this machine has cpu only" in capsys.readouterr().err
    assert main(["study", str(study), "--no-progress", "--device", "cpu", "--threads", "1"]) == 0
    report = json.loads((study.parent / "reports" / "tiny" / "report.json").read_text())
    assert report["settings"]["device"] == "cpu" and report["settings"]["executor"]["kind"] == "local"
    assert report["study"]["models"]["ref"]["settings"]["seed"] == 3


def test_time_estimate_counts_each_stage(study, monkeypatch):
    import trusteq.study as study_module
    from trusteq.study import Estimate, _order

    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)  # pairs/s
    spec = load_study(study)
    exp = spec["experiments"]["tiny"]
    plan = [("tiny", m, None) for m in _order(exp["models"], "x")] + [("tiny", None, None)]
    est = Estimate(spec, study.parent, study.parent / "built", plan)
    # fine-tune: 6 passes x 1 epoch x 40 pairs; prune: 10 s; drop-layers: as fine-tuning;
    # compare: 3 x 40 predictions + LIME 0.87 x 40 passes on 3 pairs, twice for each of the 3 models
    # (every model's own noise floor), 3x faster
    lime = 3 * 0.87 * 40
    assert est.costs == pytest.approx([2.4, 10.0, 2.4, 1.2 + 3 * 2 * lime / 300])
    assert est.remaining(0) == pytest.approx(sum(est.costs))
    assert est.remaining(2) == pytest.approx(sum(est.costs[2:]))  # no stage timed yet: no correction
    exp["compare"]["explain_limit"] = 30  # ten times the explained pairs
    assert Estimate(spec, study.parent, study.parent / "built", plan).costs[-1] == pytest.approx(
        1.2 + 10 * (6 * lime) / 300)
    # a stage that took twice its estimate doubles the rest; the correction stays within [1/4, 4]
    est.costs = [10.0, 20.0, 30.0, 40.0]
    est.finished(0)
    est.stage_started -= 20.0
    est.finished(1)
    assert est.remaining(1) == pytest.approx(2 * 90.0, rel=0.01)
    est.stage_started -= 1000.0
    est.finished(2)
    assert est.remaining(2) == pytest.approx(4 * 70.0)


def test_estimate_prints_every_stage_and_runs_nothing(study, monkeypatch, capsys):
    import trusteq.study as study_module

    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)
    text = study.read_text().replace("    compare: {", "    comparisons: {paper: {protocol: paper, explainers: [lime, "
                                     "shap], explain_limit: 3, lime_samples: 100, shap_evals: 100}}\n    compare: {")
    study.write_text(text)
    assert main(["study", str(study), "--estimate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "[1/5] tiny: model ref: 0.0 min" and out[2].startswith("[2/5] tiny: model pruned: 0.2 min")
    # explanations are costed at the cap, an upper bound under sequential stopping
    assert out[4].startswith("[4/5] tiny: compare ref with pruned, short (predictions 0.0 min, lime at most 0.0 min")
    assert out[5].startswith("[5/5] tiny: compare ref with pruned, short (paper) (predictions")
    assert out[-1].startswith("total: ") and not (study.parent / "built").exists()
    # the paper's protocol: LIME every sample, the reference twice and each candidate once, 3x cheaper passes
    est = study_module.Estimate(load_study(study), study.parent, study.parent / "built",
                                study_module._plan(load_study(study), study))
    assert est.parts[-1]["lime"] == pytest.approx(3 * 100 * (2 + 1 + 1) / 300)
    assert est.parts[-1]["shap"] > est.parts[-1]["lime"] * 0.99  # max(100, 2d + 1) >= 100 evaluations


def test_estimate_counts_every_explainer_of_the_registry(study, monkeypatch):
    """shap-permutation costs time too (it was estimated at 0 s when the estimate tested explainer names)."""
    import trusteq.study as study_module

    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)
    study.write_text(study.read_text().replace("explainers: [lime]", "explainers: [shap-permutation]"))
    est = study_module.Estimate(load_study(study), study.parent, study.parent / "built",
                                study_module._plan(load_study(study), study))
    assert set(est.parts[-1]) == {"predictions", "shap-permutation"} and est.parts[-1]["shap-permutation"] > 0


@pytest.mark.slow
def test_experiment_option_runs_and_estimates_only_the_named_experiments(study, monkeypatch, capsys):
    import trusteq.study as study_module

    text = study.read_text()
    study.write_text(text + text[text.index("  tiny:"):].replace("  tiny:", "  other:", 1))
    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)
    assert main(["study", str(study), "--estimate", "--experiment", "other"]) == 0
    out = capsys.readouterr().out
    assert "[1/4] other: model ref" in out and "tiny" not in out
    assert main(["study", str(study), "--no-progress", "--experiment", "other"]) == 0
    assert sorted(p.name for p in (study.parent / "reports").iterdir()) == ["other"]
    assert not (study.parent / "built" / "tiny").exists()
    capsys.readouterr()
    assert main(["study", str(study), "--experiment", "snli"]) == 2
    assert "no experiment 'snli'; the file defines tiny, other" in capsys.readouterr().err


def test_study_errors(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("experiments:\n  x:\n    task: pi\n")
    with pytest.raises(TrustEqError, match="missing key 'train'"):
        load_study(f)
    f.write_text("experiments:\n  x: {task: pi, train: a, test: a, models: {m: {bake: 1}}, reference: m, "
                 "candidates: []}\n")
    with pytest.raises(TrustEqError, match="expected one of finetune"):
        load_study(f)
    f.write_text("experiments:\n  x: {task: pi, train: a, test: a, models: {m: {path: a}}, reference: m, "
                 "candidates: [n]}\n")
    with pytest.raises(TrustEqError, match="'n' is compared but not defined"):
        load_study(f)


# ---- unknown keys are named (with the allowed ones) before missing keys are reported ----

_EXP = "task: pi, train: a, test: a, reference: m, candidates: []"


@pytest.mark.parametrize("text, message", [
    ("sed: 1\nexperiments: {x: {" + _EXP + ", models: {m: {path: a}}}}",
     ": unknown key 'sed'; allowed: seed, out, work, device, executor, ray_address, threads, experiments"),
    ("experiments: {x: {task: pi, train: a, tset: a, models: {m: {path: a}}, reference: m, candidates: []}}",
     ": experiments.x: unknown key 'tset'; allowed: task, train, dev, test, models, reference, candidates, "
     "compare, comparisons, search"),
    ("experiments: {x: {tsk: pi, tset: a}}", ": experiments.x: unknown keys 'tsk', 'tset'; allowed: task,"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, compare: {explain_limt: 3}}}",
     ": experiments.x.compare: unknown key 'explain_limt'; allowed: columns, label_names, limit,"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, compare: {names: [a]}}}",
     ": experiments.x.compare: unknown key 'names'"),
    ("experiments: {x: {" + _EXP + ", models: {m: {finetune: {base: b, epoch: 2}}}}}",
     ": experiments.x.models.m.finetune: unknown key 'epoch'; allowed: base, epochs, learning_rate,"),
    ("experiments: {x: {" + _EXP + ", models: {m: {distill: {teacher: t, student: s, temprature: 2}}}}}",
     ": experiments.x.models.m.distill: unknown key 'temprature'; allowed: teacher, student, temperature, "
     "alpha, epochs,"),
    ("experiments: {x: {" + _EXP + ", models: {m: {compress: {model: a, method: int8, sparsity: 1}}}}}",
     ": experiments.x.models.m.compress: unknown key 'sparsity'; allowed: model, method, epochs,"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: {folder: a}}}}}",
     ": experiments.x.models.m.path: expected a folder (a string)"),
    ("experiments: {x: {" + _EXP + ", models: {m: {finetune: {epochs: 2}}}}}",
     ": experiments.x.models.m.finetune: missing key 'base'"),
], ids=["top", "experiment", "two-keys", "compare", "compare-names", "finetune", "distill", "compress", "path",
        "missing-base"])
def test_unknown_keys_are_named_before_missing_ones(tmp_path, text, message):
    f = tmp_path / "typo.yaml"
    f.write_text(text + "\n")
    with pytest.raises(TrustEqError) as err:
        load_study(f)
    assert str(err.value).startswith(str(f) + message) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("seed: -1\nexperiments: {x: {" + _EXP + ", models: {m: {path: a}}}}", ": seed must be >= 0, got -1"),
    ("threads: 0\nexperiments: {x: {" + _EXP + ", models: {m: {path: a}}}}", ": threads must be >= 1, got 0"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, compare: {explain_limit: 2.5}}}",
     ": experiments.x.compare: explain_limit must be a whole number, got 2.5"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, compare: {top_k: 10}}}",
     ": experiments.x.compare: top_k must be a list, got 10"),
    ("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, comparisons: {p: {protocol: paper, explainers: "
     "[shap-permutation]}}}}", ": experiments.x.comparisons.p: explainer(s) ['shap-permutation'] not available"),
    ("experiments: {x: {task: text-classification, train: a, test: a, reference: m, candidates: [], models: "
     "{m: {path: a}}, compare: {protocol: paper}}}", ": experiments.x.compare: protocol 'paper' (--protocol paper) "
     "is defined for the tasks"),
    ("experiments: {x: {" + _EXP + ", models: {m: {finetune: {base: b, seed: -2}}}}}",
     ": experiments.x.models.m.finetune: seed must be >= 0, got -2"),
    ("experiments: {x: {" + _EXP + ", models: {m: {distill: {teacher: t, student: s, temperature: hot}}}}}",
     ": experiments.x.models.m.distill.temperature: expected a number, got 'hot'"),
], ids=["seed", "threads", "whole-number", "list", "paper-explainer", "paper-task", "train-seed", "temperature"])
def test_bad_values_are_refused_when_the_file_is_read(tmp_path, text, message):
    """Values are checked as the API checks them, protocol included, before anything is built."""
    f = tmp_path / "bad.yaml"
    f.write_text(text + "\n")
    with pytest.raises(TrustEqError) as err:
        load_study(f)
    assert str(err.value).startswith(str(f) + message) and "\n" not in str(err.value), str(err.value)


def test_a_bad_executor_on_the_command_line_is_refused_before_any_build(study, capsys):
    assert main(["study", str(study), "--no-progress", "--executor", "dask"]) == 2
    assert "executor 'dask'" in capsys.readouterr().err and not (study.parent / "built").exists()
    assert main(["study", str(study), "--no-progress", "--threads", "0"]) == 2
    assert not (study.parent / "built").exists()


def test_compare_keys_are_the_settings_a_study_may_set(tmp_path):
    from dataclasses import fields

    from trusteq.settings import CompareSettings

    keys = CompareSettings.study_keys()
    assert list(keys) == [f.name for f in fields(CompareSettings) if f.name not in ("names", "progress", "seed")]
    f = tmp_path / "s.yaml"
    options = "{" + ", ".join(f"{k}: null" for k in keys) + "}"  # null: the default
    f.write_text("experiments: {x: {" + _EXP + ", models: {m: {path: a}}, compare: " + options + "}}\n")
    assert set(load_study(f)["experiments"]["x"]["compare"]) == set(keys)


def test_cli_study_with_a_typo_exits_2_naming_the_key(tmp_path, capsys):
    import time

    f = tmp_path / "typo.yaml"
    f.write_text("experiments:\n  mrpc:\n    task: pi\n    train: train.tsv\n    tset: test.tsv\n"
                 "    models: {m: {finetune: {base: minilm-l3}}}\n    reference: m\n    candidates: []\n")
    started = time.time()
    assert main(["study", str(f), "--no-progress"]) == 2
    assert time.time() - started < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trusteq: error: ") and "'tset'" in err[0]
    assert "experiments.mrpc: unknown key 'tset'" in err[0] and "missing key" not in err[0]


# ---- a report names its data and models relative to the study file ----


def _strings(value, where=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


@pytest.mark.slow
def test_a_search_stage_searches_from_the_reference_and_reports_relative_paths(tmp_path, shared_data, monkeypatch,
                                                                               capsys):
    """``search:`` builds its methods from the experiment's reference, searches on the test data with the
    experiment's compare options overlaid by its own, is estimated, and writes paths relative to each report
    (the work folder and a model folder, spelled from ~, from ~)."""
    import trusteq.study as study_module

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    make_bert(tmp_path / "home" / "models" / "enc", PI, seed=5)  # a model of another study's work folder
    lines = (shared_data / "mrpc_glue/train.tsv").read_text().splitlines()[:201]
    (tmp_path / "t.tsv").write_text("\n".join(lines) + "\n")
    f = tmp_path / "s.yaml"
    f.write_text(f"""
out: reports
work: ~/w
experiments:
  tiny:
    task: pi
    train: t.tsv
    test: t.tsv
    models: {{ref: {{path: ~/models/enc}}}}
    reference: ref
    compare: {{explainers: [lime], n_boot: 50}}
    search: {{methods: ["prune:0.9", "prune:0.2"], confirmation: 0.4, explainers: []}}
""")
    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)
    assert main(["study", str(f), "--estimate"]) == 0
    estimate = capsys.readouterr().out
    assert "[2/2] tiny: search prune:0.9, prune:0.2 of ref (build" in estimate and "lime" not in estimate
    assert main(["study", str(f), "--no-progress"]) == 0
    out = tmp_path / "reports" / "tiny" / "search"
    summary = json.loads((out / "search.json").read_text())
    assert summary["guarantee"]["confirmation_examples"] == 80 and summary["reference"]["model"] == "~/models/enc"
    assert {c["method"] for c in summary["candidates"]} >= {"prune:0.9", "prune:0.2"}
    assert summary["candidates"][0]["model"] == "~/w/tiny/search-candidates/prune-0.9"
    assert not any(text.startswith("/") or "/home/" in text for _, text in _strings(summary))
    report = json.loads((out / "selection" / "prune-0.9" / "report.json").read_text())
    assert report["settings"]["explainers"] == [] and report["data"]["source"] == "../../../../../t.tsv"
    assert (out / "search.html").exists()


@pytest.mark.slow
def test_study_report_paths_are_relative_to_the_study_file(tmp_path, shared_data, monkeypatch):
    import trusteq.comparison
    import trusteq.report
    import trusteq.study as study_module
    from trusteq.study import run_study

    enc = make_bert(tmp_path / "models" / "enc", ("LABEL_0", "LABEL_1"), seed=5)
    (tmp_path / "data").mkdir()
    lines = (shared_data / "mrpc_glue/train.tsv").read_text().splitlines()[:25]
    (tmp_path / "data" / "train.tsv").write_text("\n".join(lines) + "\n")
    f = tmp_path / "studies" / "s.yaml"
    f.parent.mkdir()
    f.write_text(f"""
out: reports
work: ../built
experiments:
  tiny:
    task: pi
    train: ../data/train.tsv
    dev: ../data/train.tsv
    test: {tmp_path / "data" / "train.tsv"}
    models:
      ref: {{finetune: {{base: {enc}, epochs: 1, batch_size: 8}}}}
      given: {{path: ../models/enc}}
      student: {{distill: {{teacher: ref, student: {enc}, epochs: 1, batch_size: 8}}}}
      pruned: {{compress: {{model: ref, method: "prune:0.5"}}}}
    reference: ref
    candidates: [given, student, pruned]
""")
    written = []

    def fake_compare(reference, candidates, data, task, settings):
        from trusteq.results import CompareResult

        folders = [reference, *candidates]
        assert all(Path(p).is_absolute() for p in [data, *folders])  # loading uses absolute paths
        return CompareResult({"data": {"source": data},
                              "models": {n: {"source": p} for n, p in zip(settings.names, folders)}}, None, {})

    def fake_write_report(result, out):
        written.append(json.loads(json.dumps(result.summary)))
        return Path(out) / "report.html"

    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)
    monkeypatch.setattr(trusteq.comparison, "compare", fake_compare)
    monkeypatch.setattr(trusteq.report, "write_report", fake_write_report)
    run_study(f, progress=False)
    (summary,) = written
    assert summary["data"]["source"] == "../data/train.tsv"
    assert summary["models"]["ref"]["source"] == "../built/tiny/ref"
    assert summary["models"]["given"]["source"] == "../models/enc"
    models = summary["study"]["models"]
    assert models["ref"]["base"] == "../models/enc" and models["ref"]["dev"]["source"] == "../data/train.tsv"
    assert models["given"] == {"path": "../models/enc"}
    assert models["student"]["teacher"] == "../built/tiny/ref"
    assert models["pruned"]["source_model"] == "../built/tiny/ref"
    for where, text in _strings(summary):
        assert not text.startswith("/") and not text.startswith(str(f.parent)), (where, text)


def test_a_work_folder_spelled_from_home_is_reported_from_home(tmp_path, monkeypatch):
    from trusteq.results import CompareResult

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRUSTEQ_CACHE_DIR", str(tmp_path / "home" / ".cache" / "trusteq"))
    work, base = tmp_path / "home" / ".cache" / "w", tmp_path / "repo" / "studies"
    pulled = str(tmp_path / "home" / ".cache" / "trusteq" / "llms" / "x")  # a pulled LLM, in trusteq's cache
    summary = {"data": {"source": str(tmp_path / "repo" / "data" / "t.tsv")},
               "models": {"a": {"source": str(work / "e" / "a"), "folder": str(work / "e" / "a")},
                          "b": {"source": str(tmp_path / "m")}, "llm": {"source": pulled, "folder": pulled}}}
    result = CompareResult(summary, dataset=None, probs={})
    studied = result.for_study({"models": {"c": {"source_model": str(work / "e" / "a")}}}, base, work)
    assert studied.summary == {"data": {"source": "../data/t.tsv"},
                               "models": {"a": {"source": "~/.cache/w/e/a", "folder": "~/.cache/w/e/a"},
                                          "b": {"source": "../../m"},
                                          "llm": {"source": "~/.cache/trusteq/llms/x",
                                                  "folder": "~/.cache/trusteq/llms/x"}},
                               "study": {"models": {"c": {"source_model": "~/.cache/w/e/a"}}}}
    assert result.summary["data"]["source"].startswith("/") and "study" not in result.summary  # left as it was


def test_study_with_an_unwritable_out_fails_before_building(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    study = tmp_path / "s.yaml"
    study.write_text("out: file/reports\nexperiments:\n  e:\n    task: pi\n    train: t.tsv\n    test: t.tsv\n"
                     "    models: {a: {path: a}}\n    reference: a\n    candidates: [a]\n")
    assert main(["study", str(study), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "output folder" in err[0] and "cannot write" in err[0]


def test_a_search_reads_compare_options_under_its_own_and_a_null_keeps_compare_s():
    """The search stage's settings (and their estimate) come from one merge: ``search:`` over ``compare:``, its
    methods and confirmation left out, a null keeping the value ``compare:`` set."""
    from trusteq.study import SEARCH, _compare_kwargs

    exp = {"compare": {"explain_limit": 15, "lime_samples": 300},
           "search": {"methods": ["int8"], "confirmation": 0.4, "explain_limit": 200, "lime_samples": None}}
    assert _compare_kwargs(exp, SEARCH) == {"explain_limit": 200, "lime_samples": 300}
