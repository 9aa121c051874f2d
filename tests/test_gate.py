"""trusteq gate: exit codes for each outcome, stricter margins re-decided, malformed reports refused."""

import json

import pytest

from trusteq.cli import main
from trusteq.metrics.verdict import dimension, part, verdict


def _report(tmp_path, decisions: dict, alpha=0.05):
    """A report.json with one candidate per entry; ``decisions`` maps candidate -> accuracy interval."""
    comparisons = {}
    for name, interval in decisions.items():
        acc = part(sum(interval) / 2, interval, margin=0.01, test="non-inferiority", n=300, alpha=0.05, margin_name="accuracy")
        comparisons[name] = {"verdict": verdict({"predictions": dimension({"accuracy": acc})})}
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"settings": {"alpha": alpha}, "comparisons": comparisons}))
    return path


def _gate(capsys, *args):
    code = main(["gate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip().splitlines()


def test_every_candidate_equivalent_passes(tmp_path, capsys):
    code, out, _ = _gate(capsys, _report(tmp_path, {"a": [-0.005, 0.0], "b": [-0.002, 0.004]}))
    assert code == 0 and out == ["PASS a: equivalent (predictions equivalent)",
                                 "PASS b: equivalent (predictions equivalent)"]


def test_a_candidate_not_equivalent_fails(tmp_path, capsys):
    code, out, _ = _gate(capsys, _report(tmp_path, {"a": [-0.005, 0.0], "b": [-0.05, -0.02]}))
    assert code == 1 and out[1] == "FAIL b: not equivalent (predictions not equivalent)"


def test_inconclusive_fails_unless_allowed(tmp_path, capsys):
    # --allow-inconclusive passes an inconclusive part only when its interval is narrower than its margin (the
    # data pin the difference near the margin); one inconclusive for too little data still fails
    report = _report(tmp_path, {"a": [-0.012, -0.004], "b": [-0.02, 0.0]})
    assert _gate(capsys, report)[0] == 1
    code, out, _ = _gate(capsys, report, "--allow-inconclusive")
    assert code == 1 and out == ["PASS a: inconclusive (predictions inconclusive)",
                                 "FAIL b: inconclusive (predictions inconclusive; accuracy: interval 0.020 wide, "
                                 "margin 0.01)"]
    code, out, _ = _gate(capsys, _report(tmp_path, {"a": [-0.012, -0.004]}), "--allow-inconclusive")
    assert code == 0


def test_stricter_margin_is_decided_again_looser_is_refused(tmp_path, capsys):
    report = _report(tmp_path, {"a": [-0.008, 0.0]})
    assert _gate(capsys, report)[0] == 0
    assert _gate(capsys, report, "--margin", "accuracy=0.005")[0] == 1
    code, _, err = _gate(capsys, report, "--margin", "accuracy=0.05")
    assert code == 2 and len(err) == 1 and "looser" in err[0]


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"settings": {}}),
                                     json.dumps({"settings": {"alpha": 0.05}, "comparisons": {"a": {}}})])
def test_missing_or_malformed_report_exits_2(tmp_path, capsys, content):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    code, _, err = _gate(capsys, path)
    assert code == 2 and len(err) == 1 and err[0].startswith("trusteq: error: ")


def test_other_alpha_is_refused(tmp_path, capsys):
    code, _, err = _gate(capsys, _report(tmp_path, {"a": [-0.005, 0.0]}), "--alpha", "0.01")
    assert code == 2 and "alpha" in err[0]
