"""Every option of a comparison, once: its default, what it may be, its help, its CLI flag and its study key.

:class:`CompareSettings` holds the options of :func:`trusteq.compare`; the
``trusteq compare`` flags (:func:`add_arguments`) and the ``compare:`` keys of
a study file (:meth:`CompareSettings.from_mapping`) are generated from its
fields, so a default, a range or a choice is written in one place. Each field's
``metadata`` is an :class:`Option`. The training settings
(:class:`trusteq.workshop.finetune.TrainSettings`) are declared the same way.

>>> from trusteq.settings import CompareSettings
>>> s = CompareSettings(explain_limit=20)
>>> s.explain_limit, s.lime_samples
(20, 1000)
>>> CompareSettings(lime_samples=1)
Traceback (most recent call last):
...
trusteq.errors.SettingsError: lime_samples must be >= 2, got 1
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

from .errors import SettingsError
from .validation import check_at_least, check_option

#: Default cap on explained examples (``explain_limit``). Sequential stopping explains only what a decision needs:
#: see docs/verdict.md, "Sequential explanations", for the measurements behind this number.
EXPLAIN_LIMIT = 500

__all__ = ["Option", "option", "option_of", "CompareSettings", "add_arguments", "from_arguments", "check_fields", "check_keys",
           "settings_from_mapping"]



@dataclass(frozen=True)
class Option:
    """What a settings field is, beyond its default.

    Attributes
    ----------
    help : str
        One line for ``--help`` and the docs.
    flag : str or None
        The CLI flag (``--lime-samples``); None: not a CLI flag of its own (the
        CLI builds it from other flags, see ``cli``).
    group : str
        The ``--help`` group of the flag.
    minimum : number, optional
        Smallest allowed value (of every element, for a sequence).
    choices : tuple or callable, optional
        Allowed values (of every element, for a sequence); a callable returns them (lazy imports).
    parse : callable, optional
        ``parse(text) -> value`` of the CLI string (also applied to string values of study keys).
    metavar : str, optional
    cli : {"flag", "switch", "custom"}
        A flag with a value; a switch (``store_true`` of ``flag``, or ``--no-X`` for a True default); or
        built by hand in :mod:`trusteq.cli` (its conversion is tested against the default all the same).
    study : bool
        Whether a study file may set it (``compare:`` keys).
    check : callable, optional
        ``check(value)`` raising a :class:`~trusteq.errors.TrustEqError`, instead of ``choices`` (which then only
        lists the CLI's choices).
    """

    help: str
    flag: str | None = None
    group: str = "options"
    minimum: float | None = None
    choices: tuple | Callable[[], tuple] | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    cli: str = "flag"
    study: bool = True
    check: Callable[[Any], None] | None = None

    def allowed(self) -> tuple | None:
        return self.choices() if callable(self.choices) else self.choices


def option_of(cls, name: str) -> Option:
    """The :class:`Option` of field ``name`` of settings class ``cls`` (KeyError if there is none)."""
    options = {f.name: f.metadata["option"] for f in fields(cls)}
    return options[name]


def option(default, help: str, **kwargs):
    """A dataclass field with an :class:`Option` as its metadata (a list default becomes a tuple)."""
    return field(default=default, metadata={"option": Option(help, **kwargs)})


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _names(text: str) -> tuple[str, ...]:
    if str(text).strip().lower() == "none":
        return ()
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


def _explainer_names() -> tuple[str, ...]:
    from .explain._registry import EXPLAINERS

    return EXPLAINERS


def _explain_classes() -> tuple[str, ...]:
    from .protocols import EXPLAIN_CLASSES

    return EXPLAIN_CLASSES


def _protocols() -> tuple[str, ...]:
    from .protocols import PROTOCOLS

    return tuple(PROTOCOLS)


def _executors() -> tuple[str, ...]:
    from .executors import EXECUTORS

    return EXECUTORS


def _check_device(value) -> None:
    from .devices import check_device

    check_device(value)


def _check_label_map(value) -> None:
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str) and not isinstance(v, str) and isinstance(v, Sequence) and len(v) > 0
        and all(isinstance(n, str) and n for n in v) for k, v in value.items())
    if not ok:
        raise SettingsError(f"label_map must map model names (or '*') to lists of label names, got {value!r}")


def _check_label_names(value) -> None:
    from .data import check_label_names

    if isinstance(value, str) or not all(isinstance(n, str) for n in value):
        raise SettingsError(f"label_names must be a list of names, got {value!r}")
    check_label_names(value)


def _check_slices(value) -> None:
    if isinstance(value, str) or not all(isinstance(c, str) and c.strip() for c in value):
        raise SettingsError(f"slices must be a list of column names, got {value!r}")
    if len(set(value)) != len(value):
        raise SettingsError(f"slices {list(value)} name a column twice")


def _template(text: str) -> str:
    from .llm import parse_template

    try:
        return parse_template(text)
    except SettingsError as exc:  # argparse shows an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_template(value) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"prompt_template must be a non-empty text, got {value!r}")


def _label_words(text) -> dict[str, str]:
    from .llm import parse_label_words

    try:
        return parse_label_words(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_label_words(value) -> None:
    from .llm import parse_label_words

    if not isinstance(value, Mapping):
        raise SettingsError(f"label_words must map label names to words, got {value!r}")
    parse_label_words(value)


def _calibration_tests() -> tuple[str, ...]:
    from .metrics.verdict import CALIBRATION_TESTS

    return CALIBRATION_TESTS


def _check_executor(value) -> None:
    """An executor name or object (ExecutorError otherwise; see :func:`trusteq.executors.check_executor`)."""
    from .executors import Executor, ExecutorError

    if not isinstance(value, Executor) and value not in _executors():
        raise ExecutorError(f"executor '{value}': expected one of {', '.join(_executors())}")


@dataclass(frozen=True)
class CompareSettings:
    """The options of :func:`trusteq.compare`, checked when made (frozen; ``dataclasses.replace`` checks again).

    Attributes are the keyword arguments of :func:`trusteq.compare`, documented
    there. ``CompareSettings()`` holds the defaults the API, the CLI and study
    files share.

    Raises
    ------
    SettingsError
        A value out of range or not among the allowed ones; the message names
        the option.
    """

    # data
    columns: Any = option(None, "column mapping of a generic file (CLI: --text-a/--text-b, --text or --image, "
                          "--label, --id, --no-header)", group="data", cli="custom")
    label_names: tuple[str, ...] | None = option(None, "names of integer label codes 0,1,..., comma-separated; the "
                                                 "class order of text-classification", flag="--label-names",
                                                 group="data", parse=_names, metavar="NAMES", cli="custom",
                                                 check=_check_label_names)
    limit: int | None = option(None, "evaluate a seeded random sample of N examples", flag="--limit", group="data",
                               minimum=1, parse=int, metavar="N")
    skip_invalid: bool = option(False, "drop invalid rows (missing or unknown label, empty text, undecodable bytes, "
                                "duplicate id) instead of stopping; every dropped row and its reason is listed in "
                                "report.json", flag="--skip-invalid", group="data", cli="switch")
    slices: tuple[str, ...] = option((), "report and decide per slice: a data column (e.g. MNLI's genre), 'label' "
                                     "(the gold label) or 'length' (word-count quartiles); repeatable",
                                     flag="--slice", group="data", metavar="COL", cli="custom", check=_check_slices)
    # prompted LLMs
    prompt_template: str | None = option(None, "a decoder-only LLM as classifier: its prompt, with {text} (single "
                                         "texts) or {text_a} and {text_b} (pairs); \\n is a newline, @FILE reads "
                                         "FILE; the model's chat template wraps it where it has one", flag="--prompt-template",
                                         group="prompted LLMs", metavar="TEXT", parse=_template, check=_check_template)
    label_words: Mapping[str, str] | None = option(None, "the word of each label after the prompt, e.g. "
                                                   "negative=terrible,positive=great (names: the data's labels)",
                                                   flag="--label-words", group="prompted LLMs",
                                                   metavar="NAME=WORD[,NAME=WORD...]", parse=_label_words,
                                                   check=_check_label_words)
    # explanations
    explainers: tuple[str, ...] = option(("lime", "shap"), "comma-separated: lime, shap (Partition), "
                                         "shap-permutation; or none", flag="--explainers", group="explanations",
                                         choices=_explainer_names, parse=_names, metavar="LIST")
    protocol: str = option("pair", "pair: trusteq's pair-aware explanations, decided against both models' noise "
                           "floors; paper: the authors' settings (Rai et al. 2025: LIME and SHAP on the merged text, "
                           "their top-10 word Jaccard), for comparison with the paper, lime and shap only and "
                           "descriptive (the explanation verdict is inconclusive). The paper's budgets, set with "
                           "--lime-samples/--shap-evals: NLI LIME 1,000 samples / SHAP 500 evaluations, PI LIME 100 / "
                           "SHAP 100", flag="--protocol", group="explanations", choices=_protocols)
    lime_samples: int = option(1000, "perturbed samples per LIME explanation", flag="--lime-samples",
                               group="explanations", minimum=2, parse=int, metavar="N")
    shap_evals: int = option(2500, "cap on model evaluations per SHAP explanation: exact Owen values where they cost "
                             "at most N, a seeded estimate with N evaluations elsewhere (2,500 makes 99%% of SNLI and "
                             "MRPC pairs exact)", flag="--shap-evals", group="explanations", minimum=2, parse=int,
                             metavar="N")
    explain_limit: int = option(EXPLAIN_LIMIT, "the cap on explained examples: a candidate's explanations stop when "
                                "they are decided, when its verdict can no longer change, or at N (the first N of a "
                                "seeded permutation of the evaluated examples)", flag="--explain-limit",
                                group="explanations", minimum=1, parse=int, metavar="N")
    explain_all: bool = option(False, "explain all --explain-limit examples with every model, decided or not (a fixed "
                               "sample, for descriptive studies)", flag="--explain-all", group="explanations",
                               cli="switch")
    explain_repeats: int = option(1, "repeat the seeded explanations with R disjoint seed sets (mean and variance over "
                                  "seeds; the paper uses 3)", flag="--explain-repeats", group="explanations",
                                  minimum=1, parse=int, metavar="R")
    explain_class: str = option("gold", "class explained: the gold label (as in the paper) or the reference's "
                                "prediction", flag="--explain-class", group="explanations", choices=_explain_classes)
    top_k: tuple[int, ...] = option((10,), "top-k sizes for alignment", flag="--top-k", group="explanations",
                                    minimum=1, parse=_int_list, metavar="K[,K...]")
    # verdict
    alpha: float = option(0.05, "level of every equivalence test; decisions read 1 - 2 alpha intervals",
                          flag="--alpha", group="verdict", parse=float)
    calibration_test: str = option("non-inferiority", "non-inferiority: the candidate may add at most the calibration "
                                   "margin (better is fine); two-sided: it may differ by at most the margin either way, "
                                   "as the paper asks for similar calibration", flag="--calibration-test",
                                   group="verdict", choices=_calibration_tests)
    margins: Mapping[str, float] | None = option(None, "equivalence margins by name (defaults: MARGINS of "
                                                 "trusteq.metrics.verdict); CLI: --margin NAME=VALUE, repeatable",
                                                 flag="--margin", group="verdict", cli="custom")
    # statistics and output
    n_bins: int = option(10, "calibration bins (equal-width and equal-mass)", flag="--n-bins",
                         group="statistics and output", minimum=1, parse=int)
    n_boot: int = option(1000, "bootstrap resamples per interval", flag="--bootstrap", group="statistics and output",
                         minimum=1, parse=int, metavar="B")
    seed: int = option(0, "fixes every random choice", flag="--seed", group="statistics and output", minimum=0,
                       parse=int, study=False)
    progress: bool = option(True, "progress bars on stderr", flag="--progress",
                            group="statistics and output", cli="switch", study=False)
    # models
    label_map: Mapping[str, Sequence[str]] | None = option(
        None, "label names of a model's outputs 0..C-1, comma-separated, e.g. 'ref=entailment,neutral,contradiction'; "
        "without MODEL= it applies to every model. Needed when a model's id2label says LABEL_0.. ; repeatable",
        flag="--label-map", group="models", metavar="[MODEL=]NAMES", cli="custom", check=_check_label_map)
    names: tuple[str, ...] | None = option(None, "report names, one per model: reference first, then candidates in "
                                           "order (default: folder names)", flag="--name", group="models",
                                           metavar="NAME", cli="custom", study=False)
    max_length: int = option(128, "tokens per pair; longer pairs are truncated (counted in the report)",
                             flag="--max-length", group="models", minimum=1, parse=int)
    batch_size: int = option(64, "pairs per forward pass", flag="--batch-size", group="models", minimum=1, parse=int)
    offline: bool = option(False, "never access the network (also HF_HUB_OFFLINE=1)", flag="--offline",
                           group="models", cli="switch")
    # execution
    device: str = option("auto", "auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N",
                         flag="--device", group="execution", metavar="DEVICE", check=_check_device)
    executor: Any = option("local", "where predictions and explanations run: this process, or Ray actors (pip "
                           "install 'trusteq[ray]')", flag="--executor", group="execution", choices=_executors,
                           check=_check_executor)
    ray_address: str | None = option(None, "Ray cluster to join with --executor ray (e.g. auto, or HOST:6379); "
                                     "default: start a local Ray instance", flag="--ray-address", group="execution",
                                     metavar="ADDR")
    threads: int | None = option(None, "PyTorch and ONNX Runtime threads per worker (default: the runtimes' own "
                                 "locally, 1 per Ray actor)", flag="--threads", group="execution", minimum=1,
                                 parse=int, metavar="N")

    def __post_init__(self):
        for name in ("explainers", "top_k", "label_names", "names", "slices"):
            value = getattr(self, name)
            if isinstance(value, str) and name in ("explainers", "top_k"):
                value = _names(value)
            if value is not None and not isinstance(value, str):
                if not isinstance(value, (list, tuple)):
                    raise SettingsError(f"{name} must be a list, got {value!r}")
                object.__setattr__(self, name, tuple(value))
        if self.margins is not None:
            if not isinstance(self.margins, Mapping):
                raise SettingsError(f"margins must map margin names to numbers, got {self.margins!r}")
            object.__setattr__(self, "margins", dict(self.margins))
        if isinstance(self.label_words, str):
            from .llm import parse_label_words

            object.__setattr__(self, "label_words", parse_label_words(self.label_words))
        check_fields(self)
        self._check_verdict()

    def _check_verdict(self) -> None:
        """Margins and alpha as the verdict checks them (:func:`trusteq.metrics.verdict.check_margins`)."""
        from .metrics.verdict import check_margins

        try:
            check_margins(self.margins, self.alpha)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def prompt(self):
        """The :class:`trusteq.llm.PromptSpec` of a prompted-LLM comparison, or None.

        Raises
        ------
        SettingsError
            Only one of ``prompt_template`` and ``label_words`` is set.
        """
        from .llm import PromptSpec

        if (self.prompt_template is None) != (self.label_words is None):
            raise SettingsError("a prompted LLM needs both prompt_template (--prompt-template) and label_words "
                                "(--label-words)")
        return None if self.prompt_template is None else PromptSpec(self.prompt_template, self.label_words)

    def budget(self, explainer: str) -> int:
        """The budget of ``explainer``: the option its registry entry names (LIME samples, SHAP evaluations)."""
        from .explain._registry import REGISTRY

        return getattr(self, REGISTRY[explainer].budget_option)

    def replace(self, **changes) -> "CompareSettings":
        """A copy with ``changes`` (checked); TypeError naming an unknown option, as a function call would."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"unexpected option(s) {unknown}; the options are the fields of CompareSettings")
        return dataclasses.replace(self, **changes)

    @classmethod
    def study_keys(cls) -> tuple[str, ...]:
        """The options a study file may set under ``compare:`` (all but seed, progress and names, which the study
        sets itself)."""
        return tuple(f.name for f in fields(cls) if f.metadata["option"].study)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], base: "CompareSettings | None" = None,
                     where: str = "compare") -> "CompareSettings":
        """Settings from a study's ``compare:`` mapping over ``base`` (default: the defaults); a null value
        keeps the value of ``base``.

        Raises
        ------
        SettingsError
            An unknown key (naming the allowed ones) or a refused value, prefixed with ``where``.
        """
        return settings_from_mapping(cls, mapping, base=base, where=where, allowed=cls.study_keys())


def settings_from_mapping(cls, mapping: Mapping[str, Any], *, base=None, where: str = "settings",
                          allowed: Sequence[str] | None = None):
    """Settings of class ``cls`` from a study file's mapping over ``base`` (default: ``cls()``): a string value
    is parsed as on the command line, a null keeps the value of ``base``.

    Raises
    ------
    SettingsError
        A key outside ``allowed`` (default: every field; the message lists them) or a refused value, prefixed
        with ``where``.
    """
    check_keys(mapping, tuple(allowed if allowed is not None else (f.name for f in fields(cls))), where)
    values = {f.name: _from_yaml(f, mapping[f.name], where) for f in fields(cls) if mapping.get(f.name) is not None}
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except SettingsError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def check_keys(mapping, allowed: Sequence[str], where: str, required: Sequence[str] = ()) -> None:
    """Refuse a study file's mapping that is not one, names a key outside ``allowed`` (every such key named,
    with the allowed ones) or lacks a ``required`` key (the first one named), in that order.

    Raises
    ------
    SettingsError
        Prefixed with ``where``, the place in the file.
    """
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"{where}: expected a mapping with keys {', '.join(allowed)}")
    unknown = [str(k) for k in mapping if k not in allowed]
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise SettingsError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {keys}; "
                            f"allowed: {', '.join(allowed)}")
    for key in required:
        if key not in mapping:
            raise SettingsError(f"{where}: missing key '{key}'")


def _from_yaml(f: dataclasses.Field, value, where: str):
    """A study value: a string parsed as on the command line; a mapping of ``columns`` as a ColumnMap."""
    opt = f.metadata["option"]
    if f.name == "columns" and isinstance(value, Mapping):
        from .data import ColumnMap

        keys = [f.name for f in fields(ColumnMap)]
        unknown = [str(k) for k in value if k not in keys]
        if unknown or "label" not in value or not ({"text_a", "image"} & set(value)):
            raise SettingsError(f"{where}.columns: expected keys text_a (or image), label and some of "
                                f"{', '.join(keys[2:])} (text_b None: single texts), got {', '.join(map(str, value))}")
        return ColumnMap(**{"text_a": None, "text_b": None, **value})
    if isinstance(value, str) and opt.parse is not None:
        try:
            return opt.parse(value)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise SettingsError(f"{where}.{f.name}: {exc}") from None
    return value


def check_fields(settings) -> None:
    """Refuse a field of a settings dataclass below its ``minimum`` or outside its ``choices``.

    Raises
    ------
    SettingsError
        Naming the field, the bad value and what is allowed.
    """
    for f in fields(settings):
        opt, value = f.metadata.get("option"), getattr(settings, f.name)
        if opt is None or value is None:
            continue
        if opt.check is not None:
            opt.check(value)
            continue
        if isinstance(f.default, bool) and not isinstance(value, bool):
            raise SettingsError(f"{f.name} must be true or false, got {value!r}")
        if f.type in ("str", "str | None") and not isinstance(value, str):
            raise SettingsError(f"{f.name} must be a string, got {value!r}")
        if f.type in ("int", "int | None") and (isinstance(value, bool) or not isinstance(value, int)):
            raise SettingsError(f"{f.name} must be a whole number, got {value!r}")
        if f.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SettingsError(f"{f.name} must be a number, got {value!r}")
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        if opt.allowed() is not None:
            check_option(f.name, value, opt.allowed())
        if opt.minimum is not None:
            if isinstance(value, (tuple, list)) and not value:
                raise SettingsError(f"{f.name}: at least one value is needed")
            for v in values:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise SettingsError(f"{f.name} must be a number, got {v!r}")
                check_at_least(f.name, v, opt.minimum)


# ---------------------------------------------------------------------------
# the command line


def add_arguments(parser: argparse.ArgumentParser, cls, groups: Sequence[str] | None = None,
                  defaults: bool = True, base=None, titles: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Add the ``flag`` and ``switch`` options of settings class ``cls`` to ``parser``, one argument group per
    :attr:`Option.group`, in the order of ``groups`` (default: every group, in field order; ``titles`` renames
    them in ``--help``). Defaults are those of ``base`` (default: ``cls()``); ``defaults=False`` gives every flag
    the default None (a study's overrides). Returns the argument groups by name, for the hand-built flags."""
    defaults_of = base if base is not None else cls()
    order = list(groups) if groups is not None else list(dict.fromkeys(f.metadata["option"].group
                                                                       for f in fields(cls)))
    made = {name: parser.add_argument_group((titles or {}).get(name, name)) for name in order}
    for f in fields(cls):
        opt = f.metadata["option"]
        if opt.group not in made or opt.cli == "custom":
            continue
        g, default = made[opt.group], getattr(defaults_of, f.name) if defaults else None
        if opt.cli == "switch":
            if getattr(defaults_of, f.name) is True:
                g.add_argument(f"--no-{opt.flag[2:]}", dest=f.name, action="store_false",
                               default=True if defaults else None, help=f"turn off: {opt.help}")
            else:
                g.add_argument(opt.flag, dest=f.name, action="store_true", default=False if defaults else None,
                               help=opt.help)
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        allowed = opt.allowed() if opt.parse is None else None  # listed, and refused by the settings in one line
        metavar = "{" + ",".join(allowed) + "}" if allowed else opt.metavar
        g.add_argument(opt.flag, dest=f.name, type=opt.parse or str, default=shown, metavar=metavar, help=opt.help)
    return made


def from_arguments(cls, args: argparse.Namespace, base=None, **custom):
    """Settings of class ``cls`` from parsed arguments: every generated flag by its field name, ``custom`` for the
    hand-built ones (a flag left at None keeps the default of ``base``, default ``cls()``). ``SettingsError`` as the
    class raises it."""
    values = {}
    for f in fields(cls):
        if f.name in custom:
            values[f.name] = custom[f.name]
        elif f.metadata["option"].cli != "custom" and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return dataclasses.replace(base, **values) if base is not None else cls(**values)
