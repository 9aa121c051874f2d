"""Explanation speed, stability and fidelity: the paper's pipeline (a) against trusteq (b).

On the same SNLI test pairs, model and seeds, in one process:

(a) the paper's pipeline, as ``--protocol paper`` runs it
    (``trusteq.explain._paper``): ``lime.lime_text.LimeTextExplainer`` (1,000
    samples, 20 features) on "premise [SEP] hypothesis" and ``shap`` Partition
    with the authors' whitespace Text masker (500 evaluations), classifier
    batched at 64 in input order with per-batch padding, PyTorch, one model and
    one example at a time; stability and fidelity by the authors' top-10 word
    Jaccard;
(b) trusteq's explainers (``trusteq.explain.explain_examples``) at the
    budgets given (default: trusteq's defaults), on ONNX Runtime where
    ``trusteq.predict.onnx_twin`` accepts it (probabilities within 1e-5).

Printed for each explainer and pipeline:

* explained examples per second, and the ratio (b)/(a);
* model evaluations per explanation (after de-duplication for (b) LIME);
* forward throughput: pairs per second of time inside the model, and pairs per
  second of explanation wall time, against the model's raw batched throughput
  on the unperturbed pairs measured in the same run (same runtime);
* compute: useful floating-point operations per second over explanation wall
  time (from each evaluated pair's token count; padding not counted) against
  the machine's fp32 matrix-multiply rate, measured in the same run on a
  product shaped like the model's feed-forward layer (the best of PyTorch and
  ONNX Runtime); and the ceiling that rate puts on each pipeline: the most
  examples per second it could reach with the same evaluations per
  explanation if every second were spent multiplying at that rate;
* stability: mean top-10 Jaccard between seeds 0 and 1 of the same model;
* fidelity: mean top-10 Jaccard against a high-budget explanation of the same
  method: LIME with 10,000 samples; SHAP with 100,000 evaluations (for (b):
  exact Owen values), on the first ``--fidelity-n`` pairs.

(b)'s SHAP is exact where the pair hierarchy's cost fits its cap (the
default, 2,500, covers 99% of SNLI pairs), so its two seeds agree there and
its fidelity is 1; its examples per second count both seeds' runs, as
``trusteq compare`` would without its cache (which computes an exact
explanation once per model).

Means come with bootstrap 95% intervals (1,000 resamples). Then the same for a
reference and two candidates explained together, as ``trusteq compare`` does.

    python benchmarks/explain_speed.py --model MODEL_DIR --candidates C1 C2
    python benchmarks/explain_speed.py --model MODEL_DIR --sweep --fidelity-n 40

``--llm SOURCE`` (an LLM name such as ``smollm2-135m``, a ``.gguf`` file or a
causal-LM folder) times a prompted LLM instead (``trusteq.llm``; no pipeline
(a): the paper has none): raw scoring throughput with and without the cached
prompt prefix, then trusteq's LIME and SHAP at the given budgets: explained
examples per second (and seconds per explained example), evaluations per
explanation and per second, and GFLOP/s against the matmul rate (decoder
FLOPs counted on the tokens after the cached prefix).

    python benchmarks/explain_speed.py --llm smollm2-135m --n 10

``--model`` is a fine-tuned folder, or an encoder NAME (a random head is put
on it, seeded). This is a benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trusteq.metrics.alignment import pair_metrics
from trusteq.data import load_dataset
from trusteq.settings import CompareSettings
from trusteq.workshop.encoders import ENCODERS, resolve
from trusteq.explain import example_seed, explain_examples, segment
from trusteq.explain._paper import explain_paper_lime, explain_paper_shap, paper_jaccard
from trusteq.models import TaskModel, load_model
from trusteq.predict import onnx_twin
from trusteq.metrics.stats import Bootstrap

LLM_TEMPLATE = "Review: {text}\\nIs the sentiment positive or negative? Answer with one word."  # studies/llm-sst2
DEFAULTS = {"lime_samples": CompareSettings().lime_samples, "shap_evals": CompareSettings().shap_evals}


class Counter:
    """Wraps a pair model: counts pairs and the seconds spent inside it, keeps the pairs for ``flops``."""

    def __init__(self, fn):
        self.fn = fn
        self.pairs = 0
        self.seconds = 0.0
        self.calls: list = []

    def __call__(self, pairs):
        t = time.perf_counter()
        out = self.fn(pairs)
        self.seconds += time.perf_counter() - t
        self.pairs += len(pairs)
        self.calls.append(pairs)
        return out


class Flops:
    """Floating-point operations of a BERT-style encoder forward pass, from token counts.

    Per pair of L tokens: 2 x (encoder linear weights) x L for the projections
    and feed-forward layers, plus 4 x hidden x L^2 per layer for attention
    scores and their weighted sum (embeddings, softmax, layer norms and the
    head are left out: under 1%).
    """

    def __init__(self, task_model: TaskModel):
        import torch

        hf = task_model.model.model
        cfg = hf.config
        linear = sum(m.weight.numel() for m in hf.base_model.encoder.modules() if isinstance(m, torch.nn.Linear))
        self.per_token = 2 * linear
        self.per_token2 = 4 * cfg.hidden_size * cfg.num_hidden_layers
        self.shape = (cfg.hidden_size, cfg.intermediate_size)
        self.tokenizer = task_model.model.tokenizer
        self.max_length = task_model.model.max_length

    def tokens(self, pairs) -> np.ndarray:
        enc = self.tokenizer([p[0] for p in pairs], [p[1] for p in pairs], truncation=True,
                             max_length=self.max_length)
        return np.array([len(ids) for ids in enc["input_ids"]], dtype=np.float64)

    def __call__(self, counter: Counter) -> tuple[float, float]:
        """(total operations, mean tokens per pair) of every pair the counter saw."""
        lengths = np.concatenate([self.tokens(c) for c in counter.calls if len(c)])
        return float(np.sum(self.per_token * lengths + self.per_token2 * lengths ** 2)), float(lengths.mean())


class DecoderFlops:
    """Floating-point operations of a decoder-only LM scoring prompts (:class:`trusteq.llm.CausalLMClassifier`),
    from token counts.

    Per prompt with ``c`` tokens computed (those after the cached prefix, if any) out of ``L``: 2 x (decoder
    linear weights, from the config: attention projections and a gated feed-forward layer, as in Llama and
    Gemma; int8 layers counted as their fp32 shapes) x c, 4 x (heads x head_dim) x layers x c x L for attention
    scores and their weighted sum, and 2 x hidden x vocab for the output layer at the one position kept
    (single-token label words; embeddings, norms and softmax left out).
    """

    def __init__(self, clf, cached: bool):
        cfg = clf.model.config
        h, heads, kv = cfg.hidden_size, cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None)
        head_dim = getattr(cfg, "head_dim", None) or h // heads
        per_layer = 2 * h * heads * head_dim + 2 * h * (kv or heads) * head_dim + 3 * h * cfg.intermediate_size
        self.per_token = 2 * per_layer * cfg.num_hidden_layers
        self.attention = 4 * heads * head_dim * cfg.num_hidden_layers
        self.output = 2 * h * cfg.vocab_size
        self.shape = (h, cfg.intermediate_size)
        self.clf, self.prefix = clf, len(clf._prefix()) if cached else 0

    def tokens(self, pairs) -> tuple[np.ndarray, np.ndarray]:
        """(computed, attended) tokens per prompt, float64 arrays of shape (n,)."""
        total = np.array([len(self.clf._fit(a, b)) for a, b in pairs], dtype=np.float64)
        return total - self.prefix, total

    def per_prompt(self, computed: np.ndarray, total: np.ndarray) -> np.ndarray:
        """Operations per prompt from its (computed, attended) tokens (:meth:`tokens`)."""
        return self.per_token * computed + self.attention * computed * total + self.output

    def __call__(self, counter: Counter) -> tuple[float, float]:
        """(total operations, mean tokens computed per prompt) of every prompt the counter saw."""
        computed, total = (np.concatenate(t) for t in zip(*(self.tokens(c) for c in counter.calls if len(c))))
        return float(self.per_prompt(computed, total).sum()), float(computed.mean())


def matmul_rate(hidden: int, intermediate: int) -> float:
    """fp32 matrix-multiply rate of this machine in FLOP/s: the best of PyTorch and ONNX Runtime on
    (1,728 x hidden) @ (hidden x intermediate), i.e. 64 pairs of 27 tokens through a feed-forward layer."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    m, k, n = 64 * 27, hidden, intermediate
    a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k]),
                               helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [m, n])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    rates = []
    for fn in (lambda: session.run(None, {"A": a, "B": b}), lambda: ta @ tb):
        fn()
        t = time.perf_counter()
        for _ in range(30):
            fn()
        rates.append(2 * m * k * n * 30 / (time.perf_counter() - t))
    return max(rates)


def build_model(spec: str, labels, max_length: int) -> TaskModel:
    """A TaskModel; an encoder NAME gets a seeded random head, saved to a temporary folder."""
    import tempfile

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = spec
    if spec in ENCODERS:
        torch.manual_seed(0)
        source = resolve(spec)
        folder = tempfile.mkdtemp(prefix="trusteq-bench-")
        AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}).save_pretrained(folder)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return TaskModel(load_model(folder, max_length=max_length), labels)


def paper_batch_fn(task_model):
    """The paper's classifier: batches of 64 in input order, each padded to its longest pair."""
    from scipy.special import softmax

    clf = task_model.model

    def fn(pairs):
        out = []
        for i in range(0, len(pairs), 64):
            batch = pairs[i:i + 64]
            enc = clf.tokenizer([p[0] for p in batch], [p[1] for p in batch], padding=True, truncation=True,
                                max_length=clf.max_length, return_tensors="np")
            out.append(softmax(clf._logits(enc).astype(np.float64), axis=-1)[:, task_model.columns])
        return np.concatenate(out) if out else np.zeros((0, len(task_model.task_labels)))
    return fn


def paper_lime(model_fn, examples, targets, seed, samples):
    seeds = [example_seed(seed, e.id) for e in examples]
    return explain_paper_lime(model_fn, examples, targets, seeds, samples, "nli")


def paper_shap(model_fn, examples, targets, evals, seed=0):
    seeds = [example_seed(seed, e.id) for e in examples]
    return explain_paper_shap(model_fn, examples, targets, seeds, evals, "nli")


def paper_jaccards(a, b, method: str) -> list[float]:
    return [paper_jaccard(x, y, "nli", method) for x, y in zip(a, b)]


def jaccard_weights(a, b) -> list[float]:
    return [pair_metrics(x.weights, y.weights)["jaccard@10"] for x, y in zip(a, b)]


def ci(values) -> str:
    r = Bootstrap(len(values), n_boot=1000, seed=0).mean(np.asarray(values, dtype=float))
    return f"{r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--candidates", nargs="*", default=[], help="two more models for the 3-model run")
    p.add_argument("--data", help="default: SNLI test; with --llm, SST-2 validation")
    p.add_argument("--task", default="nli")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--fidelity-n", type=int, default=20, help="pairs with high-budget explanations")
    p.add_argument("--multi-n", type=int, default=10, help="pairs for the 3-model run")
    p.add_argument("--lime-samples", type=int, default=DEFAULTS["lime_samples"], help="trusteq LIME budget (b)")
    p.add_argument("--shap-evals", type=int, default=DEFAULTS["shap_evals"], help="trusteq SHAP budget (b)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--multi-only", action="store_true", help="only the reference + 2 candidates run")
    p.add_argument("--llm", help="instead: a prompted LLM (name, .gguf file or causal-LM folder) on --data")
    p.add_argument("--prompt-template", default=LLM_TEMPLATE, help="with --llm")
    p.add_argument("--label-words", default="negative=negative,positive=positive", help="with --llm")
    p.add_argument("--sweep", action="store_true",
                   help="instead: (b)'s stability and fidelity at several budgets, on the first --fidelity-n pairs")
    args = p.parse_args()
    args.data = args.data or f"../shared/data/{'sst2/validation' if args.llm else 'snli/test'}.tsv"
    if args.llm:
        llm(args)
        return
    if args.task != "nli":
        p.error("pipeline (a) reproduces the paper's NLI settings: use --task nli")

    ds = load_dataset(args.data, args.task, limit=args.n, seed=0)
    examples, labels = ds.examples, ds.label_names
    torch_model = build_model(args.model, labels, args.max_length)
    targets = torch_model(ds.pairs).argmax(axis=1)  # explain the predicted class, as the paper does
    fast_model, record = onnx_twin(torch_model, ds.pairs)
    nf = min(args.fidelity_n, len(examples))

    def raw(model):
        model(ds.pairs[:64])
        reps = max(1, 2000 // len(ds))
        t = time.perf_counter()
        model(ds.pairs * reps)
        return len(ds) * reps / (time.perf_counter() - t)

    if args.sweep:
        sweep(fast_model, examples[:nf], targets[:nf])
        return
    if args.multi_only:
        multi(args, ds, labels, torch_model, targets)
        return
    raw_torch, raw_fast = raw(torch_model), raw(fast_model)
    flops = Flops(torch_model)
    gemm = matmul_rate(*flops.shape)
    words = [len(segment(e.text_a, e.text_b)) for e in examples]
    print(f"model {args.model}; {len(ds)} pairs of {args.data} ({np.mean(words):.1f} words per pair on average)")
    print(f"raw batched throughput: PyTorch {raw_torch:.1f} pairs/s; (b) runtime {record['runtime']} "
          f"{raw_fast:.1f} pairs/s; (b) runtime check {record}")
    tokens = flops.tokens(ds.pairs)
    per_pair = flops.per_token * tokens + flops.per_token2 * tokens ** 2
    print(f"fp32 matrix multiply: {gemm / 1e9:.0f} GFLOP/s; unperturbed pairs: {tokens.mean():.1f} "
          f"tokens, {per_pair.mean() / 1e6:.0f} MFLOP each, so raw throughput uses "
          f"{raw_torch * per_pair.mean() / gemm:.0%} (PyTorch) and {raw_fast * per_pair.mean() / gemm:.0%} "
          f"({record['runtime']}) of the matmul rate")
    rates: dict[str, float] = {}

    def report(name, n_explained, seconds, counter, raw_rate, stability, fidelity, versus=None):
        rate = n_explained / seconds
        rates[name] = rate
        inside = counter.pairs / counter.seconds
        ops, tokens = flops(counter)
        ceiling = n_explained / (ops / gemm)
        vs = f" = {ceiling / rates[versus]:.1f}x {versus.split()[0]}" if versus else ""
        print(f"{name:26s} {rate:7.3f} ex/s  {counter.pairs / n_explained:6.0f} evals/expl  forward "
              f"{inside:6.1f} pairs/s in model = {inside / raw_rate:5.1%} of raw, {counter.pairs / seconds:6.1f} "
              f"pairs/s of wall = {counter.pairs / seconds / raw_rate:5.1%}  {tokens:4.1f} tokens/pair  "
              f"{ops / seconds / 1e9:5.1f} GFLOP/s of wall = {ops / seconds / gemm:5.1%} of matmul, ceiling "
              f"{ceiling:6.3f} ex/s{vs}  stability {stability}  fidelity {fidelity}", flush=True)

    # (a) the paper's pipeline, PyTorch
    c = Counter(paper_batch_fn(torch_model))
    t = time.perf_counter()
    a0 = paper_lime(c, examples, targets, 0, 1000)
    a1 = paper_lime(c, examples, targets, 1, 1000)
    seconds = time.perf_counter() - t
    # high-budget references run on the fast runtime (the same function within 1e-5; not timed)
    hi = paper_lime(fast_model, examples[:nf], targets[:nf], 99, 10000)
    report("(a) LIME 1000", 2 * len(examples), seconds, c, raw_torch,
           ci(paper_jaccards(a0, a1, "lime")), ci(paper_jaccards(a0, hi, "lime")))
    c = Counter(paper_batch_fn(torch_model))
    t = time.perf_counter()
    s0 = paper_shap(c, examples, targets, 500, seed=0)
    s1 = paper_shap(c, examples, targets, 500, seed=1)
    seconds = time.perf_counter() - t
    hi = paper_shap(fast_model, examples[:nf], targets[:nf], 100000)
    report("(a) SHAP Partition 500", 2 * len(examples), seconds, c, raw_torch,
           ci(paper_jaccards(s0, s1, "shap")), ci(paper_jaccards(s0, hi, "shap")))

    # (b) trusteq
    for explainer, budget, hi_budget in (("lime", args.lime_samples, 10000), ("shap", args.shap_evals, 100000)):
        c = Counter(fast_model)
        t = time.perf_counter()
        b0 = explain_examples({"m": c}, examples, targets, explainer=explainer, seed=0, budget=budget)["m"]
        b1 = explain_examples({"m": c}, examples, targets, explainer=explainer, seed=1, budget=budget)["m"]
        seconds = time.perf_counter() - t
        hi = explain_examples({"m": fast_model}, examples[:nf], targets[:nf], explainer=explainer, seed=99,
                              budget=hi_budget)["m"]
        report(f"(b) {explainer} {budget}", 2 * len(examples), seconds, c, raw_fast,
               ci(jaccard_weights(b0, b1)), ci(jaccard_weights(b0, hi)),
               versus="(a) LIME 1000" if explainer == "lime" else "(a) SHAP Partition 500")
    print(f"ratio (b)/(a) examples per second: LIME {rates[f'(b) lime {args.lime_samples}'] / rates['(a) LIME 1000']:.1f}x"
          f", SHAP {rates[f'(b) shap {args.shap_evals}'] / rates['(a) SHAP Partition 500']:.1f}x")

    if len(args.candidates) >= 2:
        multi(args, ds, labels, torch_model, targets)


def sweep(model, examples, targets) -> None:
    """Stability and fidelity of (b) against its budget: what the defaults are chosen from."""
    print(f"budget sweep on {len(examples)} pairs (stability: seeds 0 vs 1; fidelity: against LIME 10,000 "
          "samples / SHAP fully expanded)")
    for explainer, budgets, hi_budget in (("lime", (100, 200, 300, 500, 750, 1000, 2000), 10000),
                                          ("shap", (100, 300, 500, 1000, 2500), 100000)):
        hi = explain_examples({"m": model}, examples, targets, explainer=explainer, seed=99, budget=hi_budget)["m"]
        for budget in budgets:
            c = Counter(model)
            b0 = explain_examples({"m": c}, examples, targets, explainer=explainer, seed=0, budget=budget)["m"]
            b1 = explain_examples({"m": model}, examples, targets, explainer=explainer, seed=1, budget=budget)["m"]
            print(f"{explainer} {budget:6d}: {c.pairs / len(examples):6.0f} evals/expl  stability "
                  f"{ci(jaccard_weights(b0, b1))}  fidelity {ci(jaccard_weights(b0, hi))}", flush=True)


def multi(args, ds, labels, torch_model, targets) -> None:
    """A reference and two candidates: (a) one model at a time; (b) together, as ``trusteq compare`` does."""
    n = min(args.multi_n, len(ds))
    examples, targets = ds.examples[:n], targets[:n]
    models = [torch_model] + [build_model(m, labels, args.max_length) for m in args.candidates[:2]]
    fast = [onnx_twin(m, ds.pairs)[0] for m in models]
    print(f"\nreference + 2 candidates ({', '.join(args.candidates[:2])}), {n} pairs; examples/s count "
          "each example once per model set")
    t = time.perf_counter()
    for m in models:
        paper_lime(paper_batch_fn(m), examples, targets, 0, 1000)
    a_lime = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for m in models:
        paper_shap(paper_batch_fn(m), examples, targets, 500)
    a_shap = n / (time.perf_counter() - t)
    out = {}
    for explainer, budget in (("lime", args.lime_samples), ("shap", args.shap_evals)):
        t = time.perf_counter()
        explain_examples({f"m{i}": m for i, m in enumerate(fast)}, examples, targets, explainer=explainer, seed=0, budget=budget)
        out[explainer] = n / (time.perf_counter() - t)
    print(f"(a) LIME {a_lime:.3f} ex/s, (b) LIME {out['lime']:.3f} ex/s: {out['lime'] / a_lime:.1f}x")
    print(f"(a) SHAP {a_shap:.3f} ex/s, (b) SHAP {out['shap']:.3f} ex/s: {out['shap'] / a_shap:.1f}x")


def llm(args) -> None:
    """A prompted LLM: raw throughput with and without the cached prefix, then LIME and SHAP (seeds 0 and 1)."""
    from trusteq.llm import CausalLMClassifier, PromptSpec, parse_label_words, parse_template

    class Uncached(CausalLMClassifier):
        def _prefix(self):  # every prompt computed from its first token
            return self._torch.empty(0, dtype=self._torch.long)

    ds = load_dataset(args.data, "text-classification", limit=args.n, seed=0)
    spec = PromptSpec(parse_template(args.prompt_template), parse_label_words(args.label_words))
    kw = dict(max_length=160, batch_size=32, device="cpu")
    clf, uncached = CausalLMClassifier(args.llm, spec, **kw), Uncached(args.llm, spec, **kw)
    model = TaskModel(clf, ds.label_names)
    targets = model(ds.pairs).argmax(axis=1)
    flops = DecoderFlops(clf, cached=True)
    gemm = matmul_rate(*flops.shape)
    print(f"LLM {args.llm} ({clf.load_info['parameters'] / 1e6:.1f}M parameters, "
          f"{clf.load_info.get('method') or 'as loaded'}); {len(ds)} texts of {args.data}; prompt prefix cached: "
          f"{flops.prefix} tokens; fp32 matrix multiply {gemm / 1e9:.0f} GFLOP/s")
    for name, m, f in (("prefix cached", clf, flops), ("uncached", uncached, DecoderFlops(uncached, False))):
        pairs = ds.pairs * max(1, 256 // len(ds))
        m.predict_proba(pairs[:32])
        t = time.perf_counter()
        m.predict_proba(pairs)
        seconds = time.perf_counter() - t
        computed, total = f.tokens(pairs)
        rate = f.per_prompt(computed, total).sum() / seconds
        print(f"raw scoring, {name:13s}: {len(pairs) / seconds:6.1f} prompts/s, {total.mean():.1f} tokens "
              f"({computed.mean():.1f} computed), {rate / 1e9:5.1f} GFLOP/s = {rate / gemm:5.1%} of matmul", flush=True)
    for explainer, budget in (("lime", args.lime_samples), ("shap", args.shap_evals)):
        c = Counter(model)
        t = time.perf_counter()
        runs = [explain_examples({"m": c}, ds.examples, targets, explainer=explainer, seed=s, budget=budget)["m"]
                for s in (0, 1)]
        seconds = time.perf_counter() - t
        ops, tokens = flops(c)
        n = 2 * len(ds)
        print(f"{explainer} {budget:5d}: {n / seconds:6.3f} ex/s ({seconds / n:5.1f} s per explained example)  "
              f"{c.pairs / n:5.0f} evals/expl  {c.pairs / seconds:6.1f} evals/s  {tokens:4.1f} tokens computed/"
              f"eval  {ops / seconds / 1e9:5.1f} GFLOP/s of wall = {ops / seconds / gemm:5.1%} of matmul  "
              f"stability {ci(jaccard_weights(*runs))}", flush=True)


if __name__ == "__main__":
    main()
