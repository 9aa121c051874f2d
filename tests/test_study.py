"""A study file builds its models once, compares them, and continues where it stopped."""

import json

import pytest

from conftest import make_bert
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


def test_time_estimate_counts_each_stage(study, monkeypatch):
    import trusteq.study as study_module
    from trusteq.study import Estimate, _order

    monkeypatch.setattr(study_module, "_throughput", lambda source, pairs, max_length: 100.0)  # pairs/s
    spec = load_study(study)
    exp = spec["experiments"]["tiny"]
    plan = [("tiny", m) for m in _order(exp["models"], "x")] + [("tiny", None)]
    est = Estimate(spec, study.parent, study.parent / "built", plan)
    # fine-tune: 3 passes x 1 epoch x 40 pairs; prune: 10 s; drop-layers: as fine-tuning;
    # compare: 3 x 40 predictions + LIME 0.87 x 40 passes on 3 pairs (reference twice), 3x faster
    lime = 3 * 0.87 * 40
    assert est.costs == pytest.approx([1.2, 10.0, 1.2, 1.2 + (2 * lime + lime + lime) / 300])
    assert est.remaining(0) == pytest.approx(sum(est.costs))
    assert est.remaining(2) == pytest.approx(sum(est.costs[2:]))  # no stage timed yet: no correction
    exp["compare"]["explain_limit"] = 30  # ten times the explained pairs
    assert Estimate(spec, study.parent, study.parent / "built", plan).costs[-1] == pytest.approx(
        1.2 + 10 * (4 * lime) / 300)
    # a stage that took twice its estimate doubles the rest; the correction stays within [1/4, 4]
    est.costs = [10.0, 20.0, 30.0, 40.0]
    est.finished(0)
    est.stage_started -= 20.0
    est.finished(1)
    assert est.remaining(1) == pytest.approx(2 * 90.0, rel=0.01)
    est.stage_started -= 1000.0
    est.finished(2)
    assert est.remaining(2) == pytest.approx(4 * 70.0)


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
