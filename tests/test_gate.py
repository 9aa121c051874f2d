"""trusteq gate: exit codes for each outcome, stricter margins re-decided, malformed reports refused."""

import json

import pytest

from trusteq.cli import main
from trusteq.metrics.verdict import dimension, part, undecided, verdict


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


# --- policies (--policy), slices and the markdown summary (--summary) ---------------------------------------------

#: margin and test of each part a test verdict may hold
_PARTS = {"accuracy": (0.01, "non-inferiority"), "flip_rate": (0.05, "non-superiority"),
          "calibration": (0.05, "non-superiority"), "agreement": (0.05, "non-inferiority")}


def _verdict(**dims):
    """A verdict; each keyword a dimension (``explanations_lime`` is explanations.lime) mapping part -> interval
    (None: untested)."""
    out = {}
    for dim, parts in dims.items():
        built = {}
        for name, interval in parts.items():
            margin, test = _PARTS[name]
            kw = dict(margin=margin, test=test, n=500, margin_name=name if name != "agreement" else "explanation")
            built[name] = (undecided("no explained examples", **kw) if interval is None else
                           part(sum(interval) / 2, interval, alpha=0.05, **kw))
        out[dim.replace("_", ".")] = dimension(built)
    return verdict(out)


def _write(tmp_path, comparisons: dict, name="report.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"settings": {"alpha": 0.05}, "comparisons": comparisons}))
    return path


def _policy(tmp_path, text: str):
    path = tmp_path / "trust-policy.yaml"
    path.write_text(text)
    return path


GOOD = {"accuracy": [-0.004, 0.003], "flip_rate": [0.01, 0.025]}
WORSE_CALIBRATED = {"calibration": [0.06, 0.09]}


def test_policy_margin_is_stricter_and_never_looser(tmp_path, capsys):
    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD)}})
    assert _gate(capsys, report)[0] == 0
    code, out, _ = _gate(capsys, report, "--policy", _policy(tmp_path, "margins: {flip_rate: 0.005}\n"))
    assert code == 1 and out == ["FAIL a: not equivalent (predictions not equivalent)"]
    code, _, err = _gate(capsys, report, "--policy", _policy(tmp_path, "margins:\n  flip_rate: 0.1\n"))
    assert code == 2 and "looser" in err[0]


def test_policy_requires_a_subset_the_others_are_reported(tmp_path, capsys):
    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD, calibration=WORSE_CALIBRATED)}})
    assert _gate(capsys, report)[0] == 1
    code, out, _ = _gate(capsys, report, "--policy", _policy(tmp_path, "require: [predictions]\n"))
    assert code == 0 and out == ["PASS a: not equivalent (gated: predictions equivalent; reported only: "
                                 "calibration not equivalent)"]


def test_require_explanations_means_every_explainer(tmp_path, capsys):
    both = _verdict(predictions=GOOD, explanations_lime={"agreement": [-0.02, 0.0]},
                    explanations_shap={"agreement": [-0.2, 0.1]})
    report = _write(tmp_path, {"a": {"verdict": both}})
    code, out, _ = _gate(capsys, report, "--policy", _policy(tmp_path, "require: [explanations]\n"))
    assert code == 1 and "gated: explanations.lime equivalent, explanations.shap inconclusive; reported only: " \
                         "predictions equivalent" in out[0]
    code, _, err = _gate(capsys, _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD)}}), "--policy",
                         _policy(tmp_path, "require: [predictions, explanations.shap]\n"))
    assert code == 2 and "requires explanations.shap, which the report does not hold" in err[0]


def test_allow_inconclusive_per_dimension(tmp_path, capsys):
    # both inconclusive with intervals narrower than their margins; an untested part never passes
    narrow = _verdict(predictions={"accuracy": [-0.012, -0.004]}, calibration={"calibration": [0.02, 0.06]})
    untested = _verdict(predictions={"accuracy": [-0.012, -0.004]}, explanations_lime={"agreement": None})
    report = _write(tmp_path, {"narrow": {"verdict": narrow}, "untested": {"verdict": untested}})
    code, out, _ = _gate(capsys, report, "--policy", _policy(tmp_path, "allow_inconclusive: [predictions]\n"))
    assert code == 1 and [line[:4] for line in out] == ["FAIL", "FAIL"]
    policy = _policy(tmp_path, "allow_inconclusive: [predictions, calibration, explanations]\n")
    code, out, _ = _gate(capsys, report, "--policy", policy)
    assert code == 1 and out[0].startswith("PASS narrow") and out[1].endswith("agreement: untested)")
    policy = _policy(tmp_path, "require: [predictions]\nallow_inconclusive: [predictions]\n")
    assert _gate(capsys, report, "--policy", policy)[0] == 0


def _sliced(tmp_path, fiction):
    """Candidate a: equivalent overall and in slice genre=travel; slice genre=fiction has ``fiction``."""
    slices = {f"genre={g}": {"column": "genre", "value": g, "n": 250, "verdict": v}
              for g, v in (("travel", _verdict(predictions=GOOD)), ("fiction", fiction))}
    return _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD), "slices": slices}})


def test_policy_slices_every_slice_must_pass(tmp_path, capsys):
    report = _sliced(tmp_path, _verdict(predictions={"accuracy": [-0.05, -0.02]}, calibration=WORSE_CALIBRATED))
    assert _gate(capsys, report)[0] == 0  # slices are not gated by default
    code, out, _ = _gate(capsys, report, "--policy", _policy(tmp_path, "slices: true\n"))
    assert code == 1 and out == [
        "FAIL a: equivalent (predictions equivalent; slices: 1 of 2 pass)",
        "  FAIL a [genre=fiction]: not equivalent (predictions not equivalent, calibration not equivalent)"]
    # require and margins apply to the slices too
    report = _sliced(tmp_path, _verdict(predictions=GOOD, calibration=WORSE_CALIBRATED))
    assert _gate(capsys, report, "--policy", _policy(tmp_path, "slices: true\nrequire: [predictions]\n"))[0] == 0
    policy = _policy(tmp_path, "slices: true\nrequire: [predictions]\nmargins: {flip_rate: 0.025}\n")
    code, out, _ = _gate(capsys, report, "--policy", policy)
    assert code == 1 and out[0].endswith("slices: 0 of 2 pass)") and len(out) == 3


def test_policy_slices_without_slices_in_the_report_exits_2(tmp_path, capsys):
    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD)}})
    code, _, err = _gate(capsys, report, "--policy", _policy(tmp_path, "slices: true\n"))
    assert code == 2 and len(err) == 1 and "has no slices" in err[0] and "--slice" in err[0]


@pytest.mark.parametrize("text, message", [
    ("require: [predictions]\nreqiure: [calibration]\n", "unknown key 'reqiure'; allowed keys: margins, alpha, "
                                                         "require, allow_inconclusive, slices"),
    ("require: [predictions, explanation]\n", "key 'require' has unknown dimension 'explanation'; allowed "
                                              "dimensions: predictions, calibration, explanations, explanations.lime"),
    ("require: predictions\n", "key 'require' must be a list of dimensions"),
    ("require: []\n", "key 'require' must be a list of dimensions, at least one"),
    ("allow_inconclusive: [calibratoin]\n", "key 'allow_inconclusive' has unknown dimension 'calibratoin'"),
    ("slices: yes please\n", "key 'slices' must be true or false"),
    ("margins: {flips: 0.01}\n", "key 'margins' has flips: 0.01; expected NAME: VALUE with NAME one of accuracy"),
    ("margins: {accuracy: -1}\n", "VALUE a number > 0"),
    ("margins: [accuracy]\n", "key 'margins' must be a mapping"),
    ("alpha: 0.7\n", "key 'alpha' must be a number in (0, 0.5)"),
    ("- predictions\n", "expected a mapping of margins, alpha"),
    ("require: [predictions\n", "not YAML"),
])
def test_bad_policy_exits_2_naming_file_and_key(tmp_path, capsys, text, message):
    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD)}})
    policy = _policy(tmp_path, text)
    code, out, err = _gate(capsys, report, "--policy", policy)
    assert code == 2 and out == [] and len(err) == 1
    assert err[0].startswith(f"trusteq: error: policy {policy}: ") and message in err[0]


def test_flags_add_to_a_policy_and_may_not_contradict_it(tmp_path, capsys):
    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD)}})
    policy = _policy(tmp_path, "margins: {flip_rate: 0.04}\nallow_inconclusive: [predictions]\nalpha: 0.05\n")
    assert _gate(capsys, report, "--policy", policy, "--margin", "flip_rate=0.04", "--alpha", "0.05")[0] == 0
    assert _gate(capsys, report, "--policy", policy, "--margin", "accuracy=0.003")[0] == 1  # adds a margin
    for flags, named in ((["--margin", "flip_rate=0.02"], "--margin flip_rate=0.02 (policy: 0.04)"),
                         (["--alpha", "0.1"], "--alpha 0.1 (policy: 0.05)"),
                         (["--allow-inconclusive"], "--allow-inconclusive (policy: allow_inconclusive")):
        code, _, err = _gate(capsys, report, "--policy", policy, *flags)
        assert code == 2 and named in err[0] and "a flag may add to the policy, not contradict it" in err[0]


def test_summary_table_for_a_pull_request(tmp_path, capsys):
    report = _write(tmp_path, {
        "int8": {"verdict": _verdict(predictions=GOOD, calibration={"calibration": [-0.01, 0.02]},
                                     explanations_lime={"agreement": None})},
        "prune|50": {"verdict": _verdict(predictions={"accuracy": [-0.004, 0.003], "flip_rate": [0.031, 0.047]},
                                         calibration={"calibration": [-0.01, 0.02]},
                                         explanations_lime={"agreement": [-0.02, 0.01]})}})
    summary = tmp_path / "step-summary.md"
    summary.write_text("## earlier step\n")  # $GITHUB_STEP_SUMMARY: each step appends
    policy = _policy(tmp_path, "require: [predictions, calibration]\nmargins: {flip_rate: 0.03}\n")
    assert _gate(capsys, report, "--policy", policy, "--summary", summary)[0] == 1
    lines = summary.read_text().splitlines()
    assert lines[:4] == ["## earlier step", "", "### trusteq gate: FAIL", ""]
    assert lines[4:6] == ["| candidate | gate | predictions | calibration | explanations.lime |",
                          "|---|---|---|---|---|"]
    assert lines[6] == ("| int8 | **PASS** | ✓ equivalent · accuracy −0.001 [−0.004, 0.003], margin > −0.01 | "
                        "✓ equivalent · calibration 0.005 [−0.010, 0.020], margin < 0.05 | "
                        "? inconclusive · agreement untested: no explained examples (not gated) |")
    assert lines[7].startswith("| prune\\|50 | **FAIL** | ✗ not equivalent · flip rate 0.039 [0.031, 0.047], "
                               "margin < 0.03 | ")
    assert lines[9] == (f"Report `{report}` · policy: {policy} · gated: predictions, calibration · inconclusive "
                        f"allowed: none · margins: accuracy 0.01, flip_rate 0.03 (report's 0.05), calibration 0.05, "
                        f"explanation 0.05 · alpha 0.05 · slices: not gated.")
    before = summary.read_text()
    assert _gate(capsys, report, "--policy", policy, "--summary", summary)[0] == 1
    assert summary.read_text() == before + "\n" + before.partition("\n\n")[2]  # appended again, once


def test_gate_api_takes_a_policy_mapping(tmp_path, capsys):
    from trusteq.gate import Policy, gate

    report = _write(tmp_path, {"a": {"verdict": _verdict(predictions=GOOD, calibration=WORSE_CALIBRATED)}})
    assert gate(report, policy={"require": ["predictions"]}) == 0
    assert gate(report, policy=Policy(require=("calibration",))) == 1
    capsys.readouterr()
