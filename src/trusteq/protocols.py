"""Explanation protocols: how a comparison explains, measures, decides and records its explanations.

A protocol owns, for the explanation stage of :func:`trusteq.compare`:

* its seed plan (:class:`SeedPlan`: which model is explained with which seed,
  and which runs are compared), recorded in report.json as
  ``settings.explain_seeds`` and read back from there by the report;
* how it explains (through the comparison's executor, so every protocol runs
  on Ray too) and what it measures per example;
* how it decides each explanation dimension of the verdict, and its floors;
* its cost per model, for ``trusteq study --estimate``;
* the record it writes into report.json's ``settings``.

Two protocols are registered in :data:`PROTOCOLS`:

* ``"pair"`` (:class:`PairProtocol`): trusteq's pair-aware word features
  (:mod:`trusteq.explain`), every alignment measure, and a decision on the
  cosine gap to both models' noise floors.
* ``"paper"`` (:class:`PaperProtocol`): the explanation settings of Rai et al.
  (2025, arXiv 2508.13533): LIME and SHAP on the merged text, their top-k
  unique-word Jaccard against the reference's floor; descriptive only.

The comparison, the report and the study never test a protocol's name: they
call :func:`get_protocol` and the protocol's methods and attributes. A new way
of explaining (sequential stopping, image regions, prompted LLMs) is a new
:class:`Protocol` subclass registered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from .errors import SettingsError
from .results import Alignment, ExplainerResult, ExplanationRun

__all__ = ["Protocol", "PairProtocol", "PaperProtocol", "PROTOCOLS", "get_protocol", "SeedPlan", "ExplainJob",
           "Explained", "EXPLAIN_CLASSES", "VERDICT_MEASURE", "PAPER_REASON", "EXPLAIN_BLOCK", "STOPS"]

#: Classes an explanation may explain (the ``explain_class`` option): the gold label, or the reference's prediction.
EXPLAIN_CLASSES = ("gold", "reference")
#: The alignment measure the pair protocol's verdict reads (see docs/verdict.md).
VERDICT_MEASURE = "cosine"
#: Why the explanation dimensions are not decided under the paper protocol (see docs/verdict.md, "Why these choices").
PAPER_REASON = "paper protocol: descriptive only; run --protocol pair for a decision"
#: Examples explained between two sequential decisions (recorded as ``settings.explain_block``).
EXPLAIN_BLOCK = 50
#: Why a candidate's explanations stopped (``comparisons.<candidate>.explain_stop``): its explanation dimensions
#: are decided; its verdict can no longer change ("not equivalent" on another dimension, before or while
#: explaining); the cap (``explain_limit``) was reached; a fixed sample (``explain_all`` or a descriptive protocol).
STOPS = ("decided", "verdict decided by other dimensions", "cap", "fixed sample")


@dataclass(frozen=True)
class SeedPlan:
    """Which seeds explain which model, and which runs are compared, per repeat r = 0, 1, ...

    Attributes (each a tuple over repeats of a tuple of seeds)
    ----------
    reference, candidates : the seeds each reference / candidate run uses.
    alignment : (reference seed, candidate seed) compared for a candidate's alignment.
    noise_floor : (seed, seed) of the two reference runs compared for its noise floor.
    candidate_floor : (seed, seed) of the two candidate runs compared for its own floor; None: no candidate floors.
    """

    reference: tuple[tuple[int, ...], ...]
    candidates: tuple[tuple[int, ...], ...]
    alignment: tuple[tuple[int, int], ...]
    noise_floor: tuple[tuple[int, int], ...]
    candidate_floor: tuple[tuple[int, int], ...] | None = None

    def record(self) -> dict:
        """``settings.explain_seeds`` of report.json."""
        out = {k: [list(s) for s in getattr(self, k)] for k in ("reference", "candidates", "alignment", "noise_floor")}
        if self.candidate_floor is not None:
            out["candidate_floor"] = [list(s) for s in self.candidate_floor]
        return out

    @staticmethod
    def from_record(record: dict) -> "SeedPlan":
        """The plan a report.json recorded (``settings.explain_seeds``)."""
        get = lambda k: tuple(tuple(s) for s in record[k])  # noqa: E731
        return SeedPlan(get("reference"), get("candidates"), get("alignment"), get("noise_floor"),
                        get("candidate_floor") if "candidate_floor" in record else None)


@dataclass
class ExplainJob:
    """What the explanation stage hands a protocol.

    Attributes
    ----------
    models : list of TaskModel
        Reference first, then candidates (the runtimes that explain: ONNX twins where they match).
    examples : list of Example
        The examples :meth:`Protocol.select` chose, in order.
    targets : ndarray of int, shape (len(examples),)
        The class explained per example.
    settings : CompareSettings
    task : str
    executor : trusteq.executors.Executor
        Where explanations the cache lacks are computed.
    margins : dict name -> float
        The verdict's margins (checked).
    decided : dict candidate -> dict dimension -> dimension dict
        The dimensions already decided before any explanation (``predictions``, ``calibration``): a protocol may
        stop explaining a candidate whose overall verdict can no longer change.
    """

    models: list
    examples: list
    targets: np.ndarray
    settings: "CompareSettings"
    task: str
    executor: object
    margins: dict
    decided: dict


@dataclass
class Explained:
    """What the explanation stage produced: the explained example ids (the reference's, in the order explained),
    each model's runtime record, every explainer's runs and alignments, and per candidate
    ``{"explained_examples": n, "explain_stop": one of STOPS}`` (a candidate's examples are the first n ids)."""

    ids: list[str]
    runtime: dict
    results: dict[str, ExplainerResult]
    stops: dict[str, dict]


class Protocol:
    """How a comparison explains, measures and decides (subclass and register in :data:`PROTOCOLS`).

    Attributes
    ----------
    name : str
        The ``protocol`` option's value.
    decides : bool
        Whether its explanation dimensions are tested (False: descriptive, every one inconclusive).
    candidate_floors : bool
        Whether candidates are explained twice to measure their own floors.
    no_candidate_floors : str
        Why not, for the report, where it does not.
    explainers : tuple of str or None
        The explainers it offers (None: every registered one).
    tasks : tuple of str or None
        The tasks it is defined for (None: all).
    """

    # ``settings`` arguments are trusteq.settings.CompareSettings (not imported: settings.py reads PROTOCOLS)
    name = ""
    decides = True
    candidate_floors = True
    no_candidate_floors = ""
    explainers: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None

    # -- settings ------------------------------------------------------------

    def check(self, settings: CompareSettings, task: str) -> None:
        """Refuse settings or a task this protocol cannot run (SettingsError naming the option)."""
        bad = [e for e in settings.explainers if self.explainers is not None and e not in self.explainers]
        if bad:
            raise SettingsError(f"explainer(s) {bad} not available with protocol '{self.name}' (--protocol "
                                f"{self.name}); it has {list(self.explainers)} (--explainers)")
        if self.tasks is not None and task not in self.tasks:
            raise SettingsError(f"protocol '{self.name}' (--protocol {self.name}) is defined for the tasks "
                                f"{list(self.tasks)} only, not '{task}'; use the default protocol 'pair'")

    def seeds(self, settings: CompareSettings) -> SeedPlan:
        """Repeat r uses three seeds of its own, a = seed + 3r, b = a + 1, c = a + 2 (disjoint between repeats,
        so repeats are independent): the reference is explained with a and b, the candidates with b (and c for
        their own floors). A candidate's alignment compares reference@a with candidate@b, the reference's noise
        floor reference@a with reference@b, a candidate's floor candidate@b with candidate@c: every compared
        pair of runs differs in its perturbations (shared perturbations would inflate agreement)."""
        a = [settings.seed + 3 * r for r in range(settings.explain_repeats)]
        floors = self.candidate_floors
        return SeedPlan(reference=tuple((x, x + 1) for x in a),
                        candidates=tuple((x + 1, x + 2) if floors else (x + 1,) for x in a),
                        alignment=tuple((x, x + 1) for x in a), noise_floor=tuple((x, x + 1) for x in a),
                        candidate_floor=tuple((x + 1, x + 2) for x in a) if floors else None)

    def measure(self, settings: CompareSettings) -> str:
        """The per-example measure that figures and the example view read (and the verdict, where it decides)."""
        raise NotImplementedError

    def record(self, settings: CompareSettings) -> dict:
        """What report.json's ``settings`` records of the protocol: ``protocol``, ``explain_seeds``,
        ``verdict_measure`` (None when it does not decide) and any key of its own."""
        return {"protocol": self.name, "explain_seeds": self.seeds(settings).record(),
                "verdict_measure": self.measure(settings) if self.decides else None,
                "explain_block": EXPLAIN_BLOCK if self.sequential(settings) else None}

    # -- explaining ----------------------------------------------------------

    def select(self, dataset, ref_probs: np.ndarray, settings: CompareSettings) -> tuple[list, np.ndarray]:
        """The examples that may be explained, in the order they are: the first ``explain_limit`` of a seeded
        permutation of the dataset (so samples of two sizes are nested, and a confidence sequence reads the
        examples in an order fixed before any is explained); the gold class, or the reference's prediction
        (``explain_class``)."""
        chosen = np.random.default_rng(settings.seed).permutation(len(dataset))[:settings.explain_limit]
        return _chosen(dataset, ref_probs, chosen, settings)

    def runtimes(self, models: list, examples: list) -> tuple[list, dict]:
        """The models that explain (ONNX Runtime twins where they reproduce PyTorch's probabilities within 1e-5
        on the examples, :func:`trusteq.predict.onnx_twin`) and each one's record for report.json
        (``settings.explain_runtime``)."""
        from .predict import onnx_twin

        twins = [onnx_twin(m, [e.input for e in examples]) for m in models]
        return [twin for twin, _ in twins], {m.name: record for m, (_, record) in zip(models, twins)}

    def explain(self, job: ExplainJob) -> tuple[dict[str, ExplainerResult], dict[str, dict]]:
        """Every explainer's runs (by the seed plan) and alignments, and each candidate's stop (see
        :class:`Explained`); explanations computed on the job's executor where the cache lacks them.

        A protocol that decides explains sequentially: blocks of :data:`EXPLAIN_BLOCK` examples, in the order
        :meth:`select` gives; after each block every open candidate's explanation dimensions are decided (on
        confidence sequences, valid at every block), and a candidate stops when they are all decided, or when
        its verdict can no longer change, or at the cap. A candidate already "not equivalent" on the
        predictions or calibration is not explained. The reference is explained while any candidate is open.
        ``explain_all`` (and a descriptive protocol) explains every selected example with every model."""
        ref, cands = job.models[0], list(job.models[1:])
        runs: dict[tuple[str, str, int], list] = {}
        if not self.sequential(job.settings):
            self._explain_block(job, slice(0, len(job.examples)), [ref, *cands], runs)
            counts = {c.name: len(job.examples) for c in cands}
            return self._results(job, runs, counts), {c: _stop(n, STOPS[3], runs, c) for c, n in counts.items()}
        open_ = [c for c in cands if c.name in self.to_explain(job.decided, job.settings)]
        stops = {c.name: _stop(0, STOPS[1], runs, c.name) for c in cands if c not in open_}
        counts = {c.name: 0 for c in open_}
        done = 0
        while open_ and done < len(job.examples):
            block = slice(done, min(done + EXPLAIN_BLOCK, len(job.examples)))
            self._explain_block(job, block, [ref, *open_], runs)
            done = block.stop
            counts.update({c.name: done for c in open_})
            results = self._results(job, runs, counts)
            for c in list(open_):
                stop = self._why_stop(results, c.name, job)
                if stop is not None:
                    stops[c.name] = _stop(done, stop, runs, c.name)
                    open_.remove(c)
        stops.update({c.name: _stop(done, STOPS[2], runs, c.name) for c in open_})
        return (self._results(job, runs, counts) if runs else {}), {c.name: stops[c.name] for c in cands}

    def sequential(self, settings: CompareSettings) -> bool:
        """Whether it explains in blocks and stops when it can: a protocol that decides, without ``explain_all``."""
        return self.decides and not settings.explain_all

    def to_explain(self, decided: dict, settings: CompareSettings) -> list[str]:
        """The candidates this protocol may explain, given the dimensions already ``decided`` (see
        :class:`ExplainJob`): sequentially, those whose verdict is not yet "not equivalent"; else all."""
        from .metrics.verdict import NOT_EQUIVALENT, combine

        if not self.sequential(settings):
            return list(decided)
        return [c for c, dims in decided.items() if combine(d["decision"] for d in dims.values()) != NOT_EQUIVALENT]

    def _explain_block(self, job: ExplainJob, block: slice, models: list, runs: dict) -> None:
        """Explain ``job.examples[block]`` with ``models`` (reference first) and every explainer and seed of the
        plan, appending to ``runs[explainer, model, seed]``."""
        settings, ref = job.settings, models[0]
        plan = self.seeds(settings)
        examples, targets = job.examples[block], job.targets[block]
        span = f", examples {block.start + 1}-{block.stop}" if self.sequential(settings) else ""
        for explainer in settings.explainers:
            run = self.runner(explainer, settings, job.task, job.executor)
            for r in range(settings.explain_repeats):
                of = f", repeat {r + 1}/{settings.explain_repeats}" if settings.explain_repeats > 1 else ""
                for seed in sorted({*plan.reference[r], *plan.candidates[r]}):
                    group = ([ref] if seed in plan.reference[r] else []) + \
                            ([m for m in models[1:]] if seed in plan.candidates[r] else [])
                    if not group:
                        continue
                    out = run(group, examples, targets, seed=seed, progress=settings.progress,
                              label=f"{explainer} seed {seed}{of}{span}")
                    for m in group:
                        runs.setdefault((explainer, m.name, seed), []).extend(out[m.name])

    def _results(self, job: ExplainJob, runs: dict, counts: dict[str, int]) -> dict[str, ExplainerResult]:
        """Every explainer's runs and alignments from the explanations so far: each candidate on its first
        ``counts[name]`` examples (candidates with none are left out), the reference on all it has."""
        settings, ref = job.settings, job.models[0].name
        plan, cands = self.seeds(settings), [name for name, n in counts.items() if n > 0]
        out = {}
        for explainer in settings.explainers:
            by_seed = {(m, seed): ExplanationRun(m, "reference" if m == ref else "candidate", seed,
                                                 e[:counts.get(m, len(e))])
                       for (x, m, seed), e in runs.items() if x == explainer and (m == ref or m in cands)}
            pairs: dict[tuple[str, str], list] = {}
            for r in range(settings.explain_repeats):
                for kind, name, first, second in _compared(plan, r, ref, cands, by_seed):
                    pairs.setdefault((kind, name), []).append((first, second))
            alignments = [Alignment(kind, name, [(x.seed, y.seed) for x, y in p],
                                    [self._align(x.explanations, y.explanations, settings, job.task) for x, y in p])
                          for (kind, name), p in pairs.items()]
            out[explainer] = ExplainerResult(explainer, list(by_seed.values()), alignments)
        return out

    def _align(self, a: list, b: list, settings, task: str) -> dict[str, np.ndarray]:
        n = min(len(a), len(b))  # a candidate's examples are a prefix of the reference's
        return self.align(a[:n], b[:n], settings, task)

    def _why_stop(self, results: dict[str, ExplainerResult], name: str, job: ExplainJob) -> str | None:
        """Why candidate ``name`` stops after this block (one of :data:`STOPS`), or None to go on."""
        from .metrics.verdict import INCONCLUSIVE, NOT_EQUIVALENT

        decisions = [self.decide(r, name, job.margins, job.settings.alpha, job.settings, plan=False)["decision"]
                     for r in results.values()]
        if all(d != INCONCLUSIVE for d in decisions):
            return STOPS[0]
        return STOPS[1] if NOT_EQUIVALENT in decisions else None

    # -- deciding, recording, costing ----------------------------------------

    def decide(self, result: ExplainerResult | None, model: str, margins, alpha: float, settings: CompareSettings,
               plan: bool = True) -> dict:
        """The explanation dimension of candidate ``model`` for one explainer (see :mod:`trusteq.metrics.verdict`);
        ``result`` None when nothing was explained; ``plan=False``: without ``n_to_decide`` (while explaining)."""
        raise NotImplementedError

    def unexplained(self, models: list) -> dict[str, str]:
        """The candidates that cannot be explained, each with why (see :meth:`unavailable`): a model with nothing
        to run (:attr:`~trusteq.models.PairClassifier.no_model`, e.g. predictions from a file), and every candidate
        when the reference is one. ``models``: TaskModels, reference first. The comparison explains none of them
        (:meth:`to_explain`, :meth:`runtimes` and :meth:`explain` never see them)."""
        ref = models[0].model.no_model
        return {m.name: ref or m.model.no_model for m in models[1:] if ref or m.model.no_model}

    def unavailable(self, reason: str, margins, alpha: float, settings: CompareSettings) -> dict:
        """The explanation dimension of a candidate that cannot be explained: the parts :meth:`decide` gives,
        each undecided (:func:`trusteq.metrics.verdict.undecided`) for ``reason``, on no examples."""
        raise NotImplementedError

    def exact_record(self, result: ExplainerResult, settings: CompareSettings) -> dict:
        """``settings.explain_exact.<explainer>`` of report.json: evaluations per explanation (mean, max)."""
        evals = np.array([e.n_evals for r in result.runs for e in r.explanations], dtype=np.float64)
        return {"evaluations_mean": round(float(evals.mean()), 1) if len(evals) else 0.0,
                "evaluations_max": int(evals.max()) if len(evals) else 0}

    def cost(self, explainer: str, examples, settings: CompareSettings) -> dict[str, float]:
        """Mean model evaluations per explained example, all runs of one model included, by role
        (``reference``, ``candidate``), estimated over ``examples`` (for ``trusteq study --estimate``)."""
        raise NotImplementedError


class PairProtocol(Protocol):
    """trusteq's pair-aware explanations (:mod:`trusteq.explain`), decided on the cosine gap to both floors.

    Exact explanations (SHAP where its budget allows) are computed once per
    model and shared by every seed through the cache: the explainer adds no
    noise there, and their floor is 1.
    """

    name = "pair"

    def measure(self, settings: CompareSettings) -> str:
        return VERDICT_MEASURE

    def runner(self, explainer, settings, task, executor):
        from .explain import explain_cached

        return partial(explain_cached, explainer=explainer, budget=settings.budget(explainer), executor=executor)

    def align(self, a, b, settings, task):
        from .metrics.alignment import metric_names, pair_metrics

        table = {n: np.full(len(a), np.nan) for n in metric_names(settings.top_k)}
        for i, (ea, eb) in enumerate(zip(a, b)):
            if ea.example_id != eb.example_id:
                raise RuntimeError("explanations are not aligned by example")
            if len(ea.weights) == 0:
                continue
            for n, v in pair_metrics(ea.weights, eb.weights, settings.top_k).items():
                table[n][i] = v
        return table

    def decide(self, result, model, margins, alpha, settings, plan=True):
        """The noise-corrected agreement and the gross disagreement of the candidate's explanations with the
        reference's, on the candidate's examples (:func:`trusteq.metrics.verdict.decide_explanations`); a
        candidate that was not explained gets both parts inconclusive."""
        from .metrics.verdict import decide_explanations

        if result is None or not any(a.kind == "candidate" and a.model == model for a in result.alignments):
            empty = np.zeros(0)
            return decide_explanations(empty, empty, empty, measure=VERDICT_MEASURE, margins=margins, alpha=alpha,
                                       plan=plan)
        cross = result.alignment(model).values[VERDICT_MEASURE]
        n = len(cross)
        return decide_explanations(cross, result.noise_floor.values[VERDICT_MEASURE][:n],
                                   result.candidate_floor(model).values[VERDICT_MEASURE], measure=VERDICT_MEASURE,
                                   margins=margins, alpha=alpha, plan=plan)

    def unavailable(self, reason, margins, alpha, settings):
        from .metrics.verdict import dimension, undecided

        common = {"n": 0, "alpha": alpha, "measure": VERDICT_MEASURE}
        return dimension({
            "agreement": undecided(reason, margin=margins["explanation"], test="non-inferiority",
                                   margin_name="explanation", **common),
            "gross_disagreement": undecided(reason, margin=margins["gross_disagreement"], test="non-superiority",
                                            margin_name="gross_disagreement", **common)})

    def exact_record(self, result, settings):
        """Explained examples computed exactly and with a binding budget, and evaluations per explanation."""
        from .explain import REGISTRY

        spec, budget, first = REGISTRY[result.explainer], settings.budget(result.explainer), result.runs[0].explanations
        exact = int(sum(spec.exact(e.features, budget) for e in first))
        return {"exact": exact, "budget_limited": len(first) - exact, **super().exact_record(result, settings)}

    def cost(self, explainer, examples, settings):
        """Per model: exact evaluations once, plus 2 seeded runs per repeat (alignment and floor), each the
        registry's estimate (:attr:`trusteq.explain.ExplainerSpec.cost`)."""
        from .explain import REGISTRY, features

        spec, budget = REGISTRY[explainer], settings.budget(explainer)
        costs = np.array([spec.cost(features(e), budget) for e in examples]).reshape(-1, 2)
        once, per_run = costs.mean(axis=0) if len(costs) else (0.0, 0.0)
        total = float(once + 2 * settings.explain_repeats * per_run)
        return {"reference": total, "candidate": total}


class PaperProtocol(Protocol):
    """The explanation settings of Rai et al. (2025) (:mod:`trusteq.explain._paper`); descriptive only.

    The reference is explained with ``seed`` and ``seed + 1``, candidates with
    ``seed + 1`` (the authors measured no candidate floors); alignment is the
    paper's ``paper_jaccard@K`` (K the first ``top_k``) against the reference's
    floor; every explanation dimension of the verdict is inconclusive
    (:data:`PAPER_REASON`): on controls, Jaccard@10 could not tell a candidate
    relying on entirely different words from the noise floor (0.47 vs 0.52), so
    no margin on it would make a test worth its name.
    """

    name = "paper"
    decides = False
    candidate_floors = False
    no_candidate_floors = "the authors measured none"

    @property
    def explainers(self):
        from .explain import PAPER_EXPLAINERS

        return PAPER_EXPLAINERS

    @property
    def tasks(self):
        from .explain import PAPER_TASKS

        return PAPER_TASKS

    def select(self, dataset, ref_probs, settings):
        """A fixed seeded sample of ``explain_limit`` examples in dataset order (descriptive: explained whole, so
        no order of looking matters), the sample earlier versions explained, whose cached explanations and
        committed reports carry over; the class as :meth:`Protocol.select` chooses it."""
        rng = np.random.default_rng(settings.seed)
        chosen = np.sort(rng.choice(len(dataset), size=min(settings.explain_limit, len(dataset)), replace=False))
        return _chosen(dataset, ref_probs, chosen, settings)

    def measure(self, settings):
        """The paper's top-k word Jaccard at the first ``top_k``."""
        return f"paper_jaccard@{settings.top_k[0]}"

    def record(self, settings):
        return {**super().record(settings), "paper_measure": self.measure(settings)}

    def runner(self, explainer, settings, task, executor):
        from .explain import explain_paper_cached

        return partial(explain_paper_cached, task=task, explainer=explainer, budget=settings.budget(explainer),
                       executor=executor)

    def align(self, a, b, settings, task):
        from .explain import paper_jaccards

        return {self.measure(settings): paper_jaccards(a, b, task, settings.top_k[0])}

    def decide(self, result, model, margins, alpha, settings, plan=True):
        measure = self.measure(settings)
        n = len(result.alignment(model).values[measure]) if result is not None else 0
        return self._undecided(PAPER_REASON, n, margins, settings)

    def unavailable(self, reason, margins, alpha, settings):
        return self._undecided(reason, 0, margins, settings)

    def _undecided(self, reason: str, n: int, margins, settings) -> dict:
        """The dimension of the paper's measure, undecided for ``reason`` on ``n`` examples."""
        from .metrics.verdict import dimension, undecided

        measure = self.measure(settings)
        return dimension({measure: undecided(reason, margin=margins["explanation"], test="non-inferiority", n=n,
                                             margin_name="explanation", measure=measure)})

    def cost(self, explainer, examples, settings):
        """LIME all ``lime_samples`` (no de-duplication), SHAP ``shap_evals`` raised to 2d + 1 over the merged
        words, per run; the reference runs twice per repeat (its floor), each candidate once; nothing shared."""
        from .explain import paper_cost

        budget = settings.budget(explainer)
        per_run = float(np.mean([paper_cost(explainer, e, budget) for e in examples])) if len(examples) else 0.0
        return {"reference": 2 * settings.explain_repeats * per_run, "candidate": settings.explain_repeats * per_run}


def _compared(plan: SeedPlan, r: int, ref: str, cands: list[str], runs: dict) -> list[tuple]:
    """Repeat r's compared pairs of runs, ``(kind, model, first run, second run)``: the reference's noise floor,
    each candidate's alignment with the reference, and each candidate's own floor where the plan has them."""
    (a, b), (x, y) = plan.noise_floor[r], plan.alignment[r]
    out = [("noise_floor", ref, runs[ref, a], runs[ref, b])]
    out += [("candidate", m, runs[ref, x], runs[m, y]) for m in cands]
    if plan.candidate_floor is not None:
        c, d = plan.candidate_floor[r]
        out += [("candidate_floor", m, runs[m, c], runs[m, d]) for m in cands]
    return out


def _chosen(dataset, ref_probs: np.ndarray, chosen: np.ndarray, settings) -> tuple[list, np.ndarray]:
    """The examples at indices ``chosen`` and the class explained for each: the gold label, or the reference's
    prediction (``explain_class``)."""
    gold = settings.explain_class == EXPLAIN_CLASSES[0]
    targets = dataset.y[chosen] if gold else ref_probs[chosen].argmax(axis=1)
    return [dataset.examples[i] for i in chosen], targets


def _stop(n: int, why: str, runs: dict, name: str) -> dict:
    """``comparisons.<candidate>`` keys of report.json: examples explained, why no more, and the model evaluations
    its explanations record (every run of every explainer; an exact explanation shared by two seeds counts in
    each)."""
    evaluations = sum(e.n_evals for (_, m, _), explanations in runs.items() if m == name for e in explanations[:n])
    return {"explained_examples": int(n), "explain_stop": why, "explain_evaluations": int(evaluations)}


#: Registered protocols by name (the values of the ``protocol`` option).
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (PairProtocol(), PaperProtocol())}


def get_protocol(name: str) -> Protocol:
    """The protocol registered as ``name``; SettingsError naming the registered ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise SettingsError(f"unknown protocol {name!r}; expected one of {list(PROTOCOLS)}") from None

