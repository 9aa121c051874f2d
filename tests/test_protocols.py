"""Protocols are objects: they own their seed plan, explain through the executor, plug in without touching the
comparison, and the report reads the plan report.json records instead of recomputing it."""

import pytest

import controls
import trusteq
from trusteq import protocols
from trusteq.executors import LocalExecutor
from trusteq.protocols import PROTOCOLS, PairProtocol, SeedPlan, get_protocol
from trusteq.settings import CompareSettings

SMALL = dict(explain_limit=3, lime_samples=30, shap_evals=40, n_boot=50, progress=False)


class Recording(LocalExecutor):
    """A local executor that records the function of every unit it runs."""

    def __init__(self):
        super().__init__()
        self.functions = []

    def run(self, units):
        self.functions += [u.fn.__name__ for u in units]
        yield from super().run(units)


def _compare(**options):
    m, data = controls.models(), controls.dataset(60)
    return trusteq.compare(m["reference"], [m["identical"], m["other_reasons"]], data, task=data.task,
                           **{**SMALL, **options})


def test_seed_plans_round_trip_through_the_report_record():
    for name, repeats in (("pair", 1), ("pair", 3), ("paper", 2)):
        settings = CompareSettings(protocol=name, explain_repeats=repeats, seed=7)
        plan = get_protocol(name).seeds(settings)
        assert SeedPlan.from_record(get_protocol(name).record(settings)["explain_seeds"]) == plan
    pair = get_protocol("pair").seeds(CompareSettings(seed=7))
    assert pair.alignment == ((7, 8),) and pair.noise_floor == ((7, 8),) and pair.candidate_floor == ((8, 9),)
    assert get_protocol("paper").seeds(CompareSettings(seed=7)).candidate_floor is None


@pytest.mark.parametrize("protocol", ["pair", "paper"])
def test_every_protocol_explains_on_the_executor(protocol):
    executor = Recording()
    result = _compare(protocol=protocol, executor=executor, explainers=["lime"])
    unit = {"pair": "explain_unit", "paper": "paper_unit"}[protocol]
    # 3 examples: the reference with 2 seeds; each candidate with 2 seeds (pair) or 1 (paper, no own floors)
    runs = 2 + 2 * (2 if protocol == "pair" else 1)
    assert executor.functions.count(unit) == 3 * runs and "predict_batches" in executor.functions
    assert result["settings"]["protocol"] == protocol


class ShiftedSeeds(PairProtocol):
    """The pair protocol with every seed moved by 10: a protocol of its own, registered without touching the
    comparison, the report or the study."""

    name = "shifted"

    def seeds(self, settings):
        plan = super().seeds(settings)
        shift = lambda runs: tuple(tuple(s + 10 for s in r) for r in runs)  # noqa: E731
        return SeedPlan(shift(plan.reference), shift(plan.candidates), shift(plan.alignment),
                        shift(plan.noise_floor), shift(plan.candidate_floor))


def test_a_new_protocol_plugs_in_and_the_report_reads_its_seed_plan(monkeypatch, tmp_path):
    monkeypatch.setitem(PROTOCOLS, "shifted", ShiftedSeeds())
    result = _compare(protocol="shifted", explainers=["lime"])
    settings = result["settings"]
    assert settings["protocol"] == "shifted" and settings["explain_seeds"]["alignment"] == [[10, 11]]
    assert {r.seed for r in result.explanations["lime"].runs} == {10, 11, 12}
    page = trusteq.write_report(result, tmp_path)
    text = (page.parent / "report.md").read_text()
    assert "compares reference@10 with candidate@11" in text and "candidate@11 with candidate@12" in text
    verdicts = {c: v["verdict"]["dimensions"]["explanations.lime"]["decision"]
                for c, v in result["comparisons"].items()}
    assert verdicts["other_reasons"] != "equivalent"


def test_protocols_refuse_what_they_cannot_run():
    with pytest.raises(trusteq.SettingsError, match="not available with protocol 'paper'"):
        get_protocol("paper").check(CompareSettings(protocol="paper", explainers=("shap-permutation",)), "nli")
    with pytest.raises(trusteq.SettingsError, match="defined for the tasks"):
        get_protocol("paper").check(CompareSettings(protocol="paper"), "text-classification")
    with pytest.raises(trusteq.SettingsError, match="unknown protocol 'magic'"):
        get_protocol("magic")
    assert protocols.PAPER_REASON.startswith("paper protocol")


def test_costs_come_from_the_explainer_registry():
    examples = controls.dataset(20).examples
    pair = get_protocol("pair")
    for explainer in ("lime", "shap", "shap-permutation"):  # every registered explainer costs something
        cost = pair.cost(explainer, examples, CompareSettings(shap_evals=100, lime_samples=100))
        assert cost["reference"] == cost["candidate"] > 0, explainer
    lime = pair.cost("lime", examples, CompareSettings(lime_samples=100, explain_repeats=2))["reference"]
    assert lime == pytest.approx(2 * 2 * 0.87 * 100)  # two runs per repeat, identical masks evaluated once
    paper = get_protocol("paper").cost("lime", examples, CompareSettings(lime_samples=100))
    assert paper == {"reference": 200.0, "candidate": 100.0}  # the reference twice, candidates once
