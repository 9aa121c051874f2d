"""The Ray executor gives the local executor's report, also when a worker dies mid-run or the cache is half full.

A local Ray cluster of 2 CPUs (2 actors of 1 thread) on tiny BERT models and SNLI pairs.
"""

import os
import signal

import numpy as np
import pytest

import trusteq
from conftest import assert_reports_close, assert_reports_equal, comparable
from trusteq.explain import explain_examples

pytestmark = pytest.mark.slow  # a local Ray cluster and full compare runs

KWARGS = dict(task="nli", limit=40, explainers=["lime", "shap"], lime_samples=60, shap_evals=200, explain_limit=4,
              n_boot=50, progress=False)
EXECUTOR = ("executor",)  # what may differ between executors besides when and how long: the executor


def test_explaining_models_one_by_one_gives_what_explaining_them_together_gives(nli_models, shared_data):
    """What lets a worker explain one model at a time: LIME's masks depend on (example, seed), SHAP on the model."""
    from trusteq.data import load_dataset
    from trusteq.models import TaskModel, load_model

    data = load_dataset(shared_data / "snli/test.tsv", "nli", limit=3, seed=0)  # SHAP at 300: 1 estimated, 2 exact
    models = {n: TaskModel(load_model(nli_models[n], name=n), data.label_names) for n in ("ref", "shuffled")}
    for explainer, budget in (("lime", 40), ("shap", 300), ("shap-permutation", 30)):
        together = explain_examples(models, data.examples, data.y, explainer=explainer, seed=3, budget=budget)
        for name, model in models.items():
            alone = explain_examples({name: model}, data.examples, data.y, explainer=explainer, seed=3,
                                     budget=budget)[name]
            for x, y in zip(together[name], alone):
                assert np.array_equal(x.weights, y.weights) and x.n_evals == y.n_evals, (explainer, budget, name)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_executor(ray_cluster):
    """One executor for the module's runs (its actors stay warm) on the fixture's Ray instance."""
    from trusteq.executors import RayExecutor

    class KillOnce(RayExecutor):
        """Once armed, SIGKILLs process ``victim`` after the first result of a run of 4 or more explanations."""

        armed, victim = False, None

        def run(self, units):
            for n, item in enumerate(super().run(units)):
                if self.armed and n == 0 and len(units) >= 4 and units[0].fn.__name__ == "explain_unit":
                    os.kill(self.victim, signal.SIGKILL)
                    self.armed = False
                yield item

    with KillOnce(threads=1) as executor:
        yield executor


def _run(models, data, executor, **extra):
    return trusteq.compare(str(models["ref"]), [str(models["small"]), str(models["shuffled"])], data,
                           executor=executor, **KWARGS, **extra)


@pytest.fixture(scope="module")
def local_runs(nli_models, shared_data, tmp_path_factory):
    """Local runs with 1 thread (as each Ray actor) and with the default threads, each with a cache of its own."""
    data = shared_data / "snli/test.tsv"
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        for label, threads in (("1 thread", 1), ("default threads", None)):
            cache = tmp_path_factory.mktemp("cache")
            mp.setenv("TRUSTEQ_CACHE_DIR", str(cache))
            runs[label] = (_run(nli_models, data, "local", threads=threads), cache)
    return runs


def test_ray_gives_the_local_report(nli_models, shared_data, ray_executor, local_runs):
    local, _ = local_runs["1 thread"]
    remote = _run(nli_models, shared_data / "snli/test.tsv", ray_executor)
    assert remote["settings"]["executor"] == {"kind": "ray", "address": None, "workers": 2, "threads_per_worker": 1}
    for name in local.probs:
        assert np.array_equal(local.probs[name], remote.probs[name]), name
    for explainer, result in local.explanations.items():
        for run in result.runs:
            again = remote.explanations[explainer].run(run.model, run.seed).explanations
            assert all(np.array_equal(x.weights, y.weights) for x, y in zip(run.explanations, again))
    assert_reports_equal(local.summary, remote.summary, settings=EXECUTOR)
    # Other threads than the workers': the documented tolerance (1e-6, the same decisions).
    assert_reports_close(comparable(local_runs["default threads"][0].summary, settings=EXECUTOR),
                         comparable(remote.summary, settings=EXECUTOR), atol=1e-6)


def test_a_killed_worker_and_a_half_filled_cache_give_the_same_report(nli_models, shared_data, ray_executor,
                                                                      local_runs, monkeypatch):
    local, cache = local_runs["1 thread"]
    monkeypatch.setenv("TRUSTEQ_CACHE_DIR", str(cache))
    entries = sorted((cache / "explanations").rglob("*.npz"))
    for path in entries[::2]:  # as if a run had been interrupted
        path.unlink()
    before = ray_executor.pids()
    ray_executor.victim, ray_executor.armed = before[0], True
    remote = _run(nli_models, shared_data / "snli/test.tsv", ray_executor)
    assert not ray_executor.armed, "no worker was killed"
    assert ray_executor.pids()[0] != before[0]  # Ray restarted the actor and ran its units again
    assert len(list((cache / "explanations").rglob("*.npz"))) == len(entries)
    assert_reports_equal(local.summary, remote.summary, settings=EXECUTOR)
