"""Explanation speed and stability: the paper's pipeline against trusteq's explainers.

Prints, for the same SNLI test pairs, model and seed:

(a) the paper's pipeline: ``lime.lime_text.LimeTextExplainer`` (1,000 samples)
    on "premise ||| hypothesis" and ``shap`` Partition with a Text masker over
    the model's tokenizer (500 evaluations), classifier batched at 64 with
    per-batch padding, one example at a time;
(b) trusteq's explainers (``trusteq.explain.explain_examples``) at the
    budgets given.

For each: explained examples per second, model evaluations per explanation,
forward pairs per second during explanation against the model's raw batched
throughput measured in the same run, stability (mean top-10 Jaccard between
seeds 0 and 1, with a bootstrap 95% interval) and fidelity (mean top-10
Jaccard against a high-budget trusteq explanation; LIME only, --fidelity-samples).

    python benchmarks/explain_speed.py --model minilm-l6 --n 100

``--model`` is a fine-tuned folder, or an encoder NAME (a random classification
head is put on it, seeded). This is a benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trusteq.alignment import pair_metrics
from trusteq.data import load_dataset
from trusteq.encoders import ENCODERS, resolve
from trusteq.explain import explain_examples, segment
from trusteq.stats import Bootstrap

SEP = " ||| "


class Counter:
    """Wraps a pair model: counts pairs and forward time."""

    def __init__(self, fn):
        self.fn = fn
        self.pairs = 0
        self.seconds = 0.0

    def __call__(self, pairs):
        t = time.perf_counter()
        out = self.fn(pairs)
        self.seconds += time.perf_counter() - t
        self.pairs += len(pairs)
        return out


def build_model(spec: str, labels, max_length: int):
    """A TaskModel and its tokenizer; an encoder NAME gets a seeded random head, saved to a temporary folder."""
    import tempfile

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trusteq.models import HFClassifier, TaskModel

    folder = spec
    if spec in ENCODERS:
        torch.manual_seed(0)
        source = resolve(spec)
        folder = tempfile.mkdtemp(prefix="trusteq-bench-")
        AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}).save_pretrained(folder)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    clf = HFClassifier(folder, name=spec, max_length=max_length)
    return TaskModel(clf, labels), clf.tokenizer


def paper_batch_fn(task_model):
    """The paper's classifier: batches of 64 in input order, padded per batch."""
    def fn(pairs):
        out = []
        for i in range(0, len(pairs), 64):
            out.append(task_model(pairs[i:i + 64]))
        return np.concatenate(out) if out else np.zeros((0, len(task_model.task_labels)))
    return fn


def paper_lime(model_fn, examples, targets, seed, samples, labels):
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(class_names=list(labels), random_state=seed)
    weights = []

    def classifier(texts):
        return model_fn([tuple(t.split(SEP.strip(), 1)) if SEP.strip() in t else (t, "") for t in texts])

    for ex, target in zip(examples, targets):
        exp = explainer.explain_instance(ex.text_a + SEP + ex.text_b, classifier, num_features=10,
                                         num_samples=samples, labels=(int(target),))
        weights.append(dict(exp.as_list(label=int(target))))
    return weights


def paper_shap(model_fn, tok, examples, targets, evals):
    import shap

    def f(texts):
        return model_fn([tuple(t.split(SEP.strip(), 1)) if SEP.strip() in t else (t, "") for t in texts])

    explainer = shap.Explainer(f, shap.maskers.Text(tok))
    out = []
    for ex, target in zip(examples, targets):
        sv = explainer([ex.text_a + SEP + ex.text_b], max_evals=evals, silent=True)
        out.append({str(tok_): float(v) for tok_, v in zip(sv.data[0], sv.values[0][:, int(target)])})
    return out


def jaccard_dicts(a: dict, b: dict, k: int = 10) -> float:
    ta = set(sorted(a, key=lambda w: -abs(a[w]))[:k])
    tb = set(sorted(b, key=lambda w: -abs(b[w]))[:k])
    return len(ta & tb) / max(1, len(ta | tb))


def summary(values, seed=0) -> str:
    r = Bootstrap(len(values), n_boot=1000, seed=seed).mean(np.asarray(values, dtype=float))
    return f"{r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--data", default="../shared/data/snli/test.tsv")
    p.add_argument("--task", default="nli")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--lime-samples", type=int, default=1000, help="trusteq LIME budget (b)")
    p.add_argument("--shap-evals", type=int, default=500, help="trusteq SHAP budget (b)")
    p.add_argument("--fidelity-samples", type=int, default=10000)
    p.add_argument("--max-length", type=int, default=128)
    args = p.parse_args()

    ds = load_dataset(args.data, args.task, limit=args.n, seed=0)
    examples, targets = ds.examples, ds.y
    task_model, tok = build_model(args.model, ds.label_names, args.max_length)

    t = time.perf_counter()
    task_model(ds.pairs * max(1, 2000 // len(ds)))
    raw = len(ds) * max(1, 2000 // len(ds)) / (time.perf_counter() - t)
    print(f"model {args.model}; {len(ds)} pairs of {args.data}; raw batched throughput {raw:.1f} pairs/s")
    rows = []

    def report(name, seconds, counter, stability, fidelity="n/a"):
        per = counter.pairs / len(examples) / 2
        rows.append((name, len(examples) * 2 / seconds))
        fwd = counter.pairs / counter.seconds if counter.seconds else float("nan")
        print(f"{name:28s} {len(examples) * 2 / seconds:8.3f} ex/s  {per:7.0f} evals/expl  "
              f"forward {fwd:7.1f} pairs/s ({fwd / raw:5.1%} of raw)  stability {stability}  fidelity {fidelity}")

    # (a) the paper's pipeline
    c = Counter(paper_batch_fn(task_model))
    t = time.perf_counter()
    a0 = paper_lime(c, examples, targets, 0, 1000, ds.label_names)
    a1 = paper_lime(c, examples, targets, 1, 1000, ds.label_names)
    report("(a) paper LIME 1000", time.perf_counter() - t, c,
           summary([jaccard_dicts(x, y) for x, y in zip(a0, a1)]))
    c = Counter(paper_batch_fn(task_model))
    t = time.perf_counter()
    s0 = paper_shap(c, tok, examples, targets, 500)
    s1 = paper_shap(c, tok, examples, targets, 500)
    report("(a) paper SHAP Partition 500", time.perf_counter() - t, c,
           summary([jaccard_dicts(x, y) for x, y in zip(s0, s1)]))

    # (b) trusteq
    hi = explain_examples({"m": task_model}, examples, targets, "lime", seed=99,
                          n_samples=args.fidelity_samples)["m"] if args.fidelity_samples else None
    for explainer, budget in (("lime", args.lime_samples), ("shap", args.shap_evals)):
        c = Counter(task_model)
        t = time.perf_counter()
        b0 = explain_examples({"m": c}, examples, targets, explainer, seed=0, n_samples=budget)["m"]
        b1 = explain_examples({"m": c}, examples, targets, explainer, seed=1, n_samples=budget)["m"]
        seconds = time.perf_counter() - t
        stab = summary([pair_metrics(x.weights, y.weights)["jaccard@10"] for x, y in zip(b0, b1)])
        fid = summary([pair_metrics(x.weights, h.weights)["jaccard@10"] for x, h in zip(b0, hi)]) \
            if hi is not None and explainer == "lime" else "n/a"
        report(f"(b) trusteq {explainer} {budget}", seconds, c, stab, fid)
    print("features per pair (words):", np.mean([len(segment(e.text_a, e.text_b)) for e in examples]))


if __name__ == "__main__":
    main()
