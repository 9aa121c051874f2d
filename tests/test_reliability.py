"""Interrupted runs, concurrency, determinism across thread counts, offline behaviour, odd text."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import NLI, assert_reports_equal
from trusteq.errors import ModelError
from trusteq.models import TaskModel, load_model


def _cmd(models, data, out, *extra):
    return [sys.executable, "-m", "trusteq", "compare", "--reference", str(models["ref"]), "--candidate",
            str(models["small"]), "--data", str(data), "--task", "nli", "--limit", "60", "--explainers", "lime",
            "--explain-limit", "40", "--explain-all", "--lime-samples", "400", "--bootstrap", "100", "--no-progress",
            "--out", str(out), *extra]


def _report(out):
    return json.loads((out / "report.json").read_text())


def _env(cache):
    env = dict(os.environ, TRUSTEQ_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_sigkill_during_explanations_then_resume(nli_models, shared_data, tmp_path):
    data = shared_data / "snli/test.tsv"
    # uninterrupted reference run, own cache
    ok = subprocess.run(_cmd(nli_models, data, tmp_path / "clean"), env=_env(tmp_path / "c1"), capture_output=True,
                        text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    # killed run
    cache = tmp_path / "c2"
    proc = subprocess.Popen(_cmd(nli_models, data, tmp_path / "killed"), env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    explained = cache / "explanations"
    deadline = time.time() + 300
    while time.time() < deadline:
        if explained.exists() and sum(1 for _ in explained.rglob("*.npz")) >= 10:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "report.json").exists()  # no partial report
    before = {p: p.stat().st_mtime_ns for p in explained.rglob("*.npz")}
    assert 10 <= len(before) < 3 * 40
    again = subprocess.run(_cmd(nli_models, data, tmp_path / "killed"), env=_env(cache), capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    # finished work was reused, not recomputed
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert_reports_equal(_report(tmp_path / "killed"), _report(tmp_path / "clean"))


@pytest.mark.slow
def test_two_concurrent_runs_share_a_cache(nli_models, shared_data, tmp_path):
    data = shared_data / "snli/test.tsv"
    env = _env(tmp_path / "shared-cache")
    procs = [subprocess.Popen(_cmd(nli_models, data, tmp_path / f"out{i}", "--explain-limit", "8"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    assert_reports_equal(_report(tmp_path / "out0"), _report(tmp_path / "out1"))


PAIRS = [("A man is sleeping on the grass.", "A man is outside."),
         ("Two children are playing with a red ball in the street near the water.", "Kids play."),
         ("Un homme dort dans l'herbe.", "Der Mann schläft 😴 im Gras."),
         ("😀😀", "🐶 runs")]


def test_thread_count_changes_probabilities_by_less_than_1e6(nli_models):
    import torch

    model = TaskModel(load_model(str(nli_models["ref"])), NLI)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model(PAIRS)
        torch.set_num_threads(2)
        two = model(PAIRS)
    finally:
        torch.set_num_threads(saved)
    assert np.abs(one - two).max() < 1e-6


def test_offline_never_touches_the_network(monkeypatch):
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelError) as info:
        load_model("example-org/not-downloaded", offline=True)
    assert attempts == []
    msg = str(info.value)
    assert "example-org/not-downloaded" in msg and "--local-dir" in msg and "offline" in msg


def test_non_english_and_emoji_text_is_predicted_and_explained(nli_models):
    from trusteq.explain import explain_examples
    from trusteq.data import Example

    model = TaskModel(load_model(str(nli_models["ref"])), NLI)
    p = model(PAIRS)
    assert np.isfinite(p).all()
    exs = [Example(str(i), a, b, "entailment") for i, (a, b) in enumerate(PAIRS)]
    out = explain_examples({"ref": model}, exs, [0] * 4, explainer="lime", seed=0, budget=50)["ref"]
    # accented words are features; emoji are not words, so they are never removed
    assert [f.word for f in out[2].features][-4:] == ["Mann", "schläft", "im", "Gras"]
    assert [f.word for f in out[3].features] == ["runs"]
