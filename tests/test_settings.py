"""Every compare and training option has one home (trusteq.settings): the CLI's defaults are the API's, each option
is a study key (or refused as one, for those a study sets itself), and a bad value is refused in one line (exit 2)
before any work."""

from dataclasses import fields

import pytest

from trusteq.cli import build_parser, compare_settings, main
from trusteq.data import ColumnMap
from trusteq.errors import TrustEqError
from trusteq.settings import CompareSettings, option_of, settings_from_mapping
from trusteq.workshop.finetune import TrainSettings

REQUIRED = ["compare", "--reference", "ref", "--candidate", "cand", "--data", "DATA", "--task", "nli", "--out", "OUT"]

# field: (CLI arguments, the value they give, a study value, the value it gives)
VALID = {
    "columns": (["--text-a", "p", "--text-b", "h", "--label", "l"], ColumnMap("p", "h", "l"),
                {"text_a": "p", "text_b": "h", "label": "l"}, ColumnMap("p", "h", "l")),
    "label_names": (["--label-names", "a,b"], ("a", "b"), ["a", "b"], ("a", "b")),
    "limit": (["--limit", "5"], 5, 5, 5),
    "slices": (["--slice", "genre", "--slice", "label"], ("genre", "label"), ["genre", "label"], ("genre", "label")),
    "prompt_template": (["--prompt-template", "Review: {text}\\nSentiment:", "--label-words", "a=x,b=y"],
                        "Review: {text}\nSentiment:", "Review: {text}\\nSentiment:", "Review: {text}\nSentiment:"),
    "label_words": (["--prompt-template", "{text}", "--label-words", "a=x,b=y"], {"a": "x", "b": "y"}, "a=x,b=y",
                    {"a": "x", "b": "y"}),
    "skip_invalid": (["--skip-invalid"], True, True, True),
    "explainers": (["--explainers", "lime"], ("lime",), ["lime"], ("lime",)),
    "protocol": (["--protocol", "paper"], "paper", "paper", "paper"),
    "lime_samples": (["--lime-samples", "50"], 50, 50, 50),
    "shap_evals": (["--shap-evals", "100"], 100, 100, 100),
    "explain_limit": (["--explain-limit", "7"], 7, 7, 7),
    "explain_all": (["--explain-all"], True, True, True),
    "explain_repeats": (["--explain-repeats", "2"], 2, 2, 2),
    "explain_class": (["--explain-class", "reference"], "reference", "reference", "reference"),
    "top_k": (["--top-k", "5,10"], (5, 10), [5, 10], (5, 10)),
    "alpha": (["--alpha", "0.1"], 0.1, 0.1, 0.1),
    "calibration_test": (["--calibration-test", "two-sided"], "two-sided", "two-sided", "two-sided"),
    "margins": (["--margin", "accuracy=0.02"], {"accuracy": 0.02}, {"accuracy": 0.02}, {"accuracy": 0.02}),
    "n_bins": (["--n-bins", "15"], 15, 15, 15),
    "n_boot": (["--bootstrap", "200"], 200, 200, 200),
    "seed": (["--seed", "3"], 3, None, None),
    "progress": (["--no-progress"], False, None, None),
    "label_map": (["--label-map", "ref=a,b"], {"ref": ["a", "b"]}, {"ref": ["a", "b"]}, {"ref": ["a", "b"]}),
    "names": (["--name", "a", "--name", "b"], ("a", "b"), None, None),
    "max_length": (["--max-length", "64"], 64, 64, 64),
    "batch_size": (["--batch-size", "8"], 8, 8, 8),
    "offline": (["--offline"], True, True, True),
    "device": (["--device", "cpu"], "cpu", "cpu", "cpu"),
    "executor": (["--executor", "ray"], "ray", "ray", "ray"),
    "ray_address": (["--ray-address", "auto"], "auto", "auto", "auto"),
    "threads": (["--threads", "2"], 2, 2, 2),
}

# field: (bad CLI arguments or None where a switch cannot be bad, a bad study value, what the message names)
INVALID = {
    "columns": (["--text", "t", "--text-a", "p"], {"txt": "t"}, "text"),  # --text or --text-a; the key text_a
    "label_names": (["--label-names", "a,A"], ["a", "A"], "repeat a name"),
    "limit": (["--limit", "0"], 0, "limit"),
    "slices": (["--slice", "label", "--slice", "label"], "genre", "slices"),
    "prompt_template": (["--prompt-template", " ", "--label-words", "a=x,b=y"], "", "prompt"),
    "label_words": (["--prompt-template", "{text}", "--label-words", "a=x,b=x"], {"a": ""}, "label"),
    "skip_invalid": (None, "maybe", "skip_invalid"),
    "explainers": (["--explainers", "lime,gradcam"], ["gradcam"], "explainers"),
    "protocol": (["--protocol", "magic"], "magic", "protocol"),
    "lime_samples": (["--lime-samples", "1"], 1, "lime_samples"),
    "shap_evals": (["--shap-evals", "1"], 1, "shap_evals"),
    "explain_limit": (["--explain-limit", "0"], 0, "explain_limit"),
    "explain_all": (None, "maybe", "explain_all"),
    "explain_repeats": (["--explain-repeats", "0"], 0, "explain_repeats"),
    "explain_class": (["--explain-class", "model"], "model", "explain_class"),
    "top_k": (["--top-k", "0"], [0], "top_k"),
    "alpha": (["--alpha", "0.7"], 0.7, "alpha"),
    "calibration_test": (["--calibration-test", "similar"], "similar", "calibration_test"),
    "margins": (["--margin", "accuracy=-1"], {"nope": 0.1}, "margin"),
    "n_bins": (["--n-bins", "0"], 0, "n_bins"),
    "n_boot": (["--bootstrap", "0"], 0, "n_boot"),
    "seed": (["--seed", "x"], 1, "seed"),
    "progress": (None, True, "progress"),
    "label_map": (["--label-map", "ref="], {"ref": "a"}, "label"),
    "names": (["--name", "a", "--name", "b", "--name", "c"], ["a", "b"], "names"),
    "max_length": (["--max-length", "0"], 0, "max_length"),
    "batch_size": (["--batch-size", "0"], 0, "batch_size"),
    "offline": (None, "yes", "offline"),
    "device": (["--device", "gpu"], "gpu", "device 'gpu'"),
    "executor": (["--executor", "dask"], "dask", "executor 'dask'"),
    "ray_address": (["--ray-address", "auto"], 5, "ray"),
    "threads": (["--threads", "0"], 0, "threads"),
}

OPTIONS = [f.name for f in fields(CompareSettings)]


def test_every_option_has_its_cases():
    assert set(VALID) == set(OPTIONS) == set(INVALID)


def _exit_code(argv) -> int:
    """``main(argv)``'s exit code, argparse's own refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _parse(extra=()):
    return build_parser().parse_args([*REQUIRED, *extra])


@pytest.mark.parametrize("name", OPTIONS)
def test_cli_default_is_the_api_default(name):
    assert getattr(compare_settings(_parse()), name) == getattr(CompareSettings(), name)


def test_cli_defaults_are_the_api_defaults_all_at_once():
    assert compare_settings(_parse()) == CompareSettings()


@pytest.mark.parametrize("name", OPTIONS)
def test_cli_flag_sets_the_option(name):
    args, expected, _, _ = VALID[name]
    assert getattr(compare_settings(_parse(args)), name) == expected


@pytest.mark.parametrize("name", OPTIONS)
def test_study_key_is_accepted_or_refused_as_one_the_study_sets(name):
    _, _, value, expected = VALID[name]
    if name in ("seed", "progress", "names"):  # the study sets these itself
        assert name not in CompareSettings.study_keys()
        with pytest.raises(TrustEqError, match=f"unknown key '{name}'; allowed: "):
            CompareSettings.from_mapping({name: value or 1}, where="s.yaml: experiments.x.compare")
        return
    assert getattr(CompareSettings.from_mapping({name: value}), name) == expected


@pytest.mark.parametrize("name", [n for n in OPTIONS if INVALID[n][0] is not None])  # a switch cannot be bad
def test_cli_refuses_a_bad_value_in_one_line_before_any_work(name, tmp_path, capsys):
    args, _, message = INVALID[name]
    missing = tmp_path / "never-read.tsv"  # refused before the data is read
    argv = [str(missing) if a == "DATA" else str(tmp_path / "out") if a == "OUT" else a for a in REQUIRED]
    if name == "ray_address":
        argv += ["--executor", "local"]  # an address needs executor ray
    assert _exit_code([*argv, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trusteq: error: ") and message in err[0], err
    assert "no such file" not in err[0] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", OPTIONS)
def test_study_refuses_a_bad_value_naming_the_place(name):
    _, value, message = INVALID[name]
    with pytest.raises(TrustEqError) as err:
        CompareSettings.from_mapping({name: value}, where="s.yaml: experiments.x.compare")
    text = str(err.value)
    assert text.startswith("s.yaml: experiments.x.compare") or name in ("device", "executor"), text
    assert message in text and "\n" not in text


def test_help_shows_every_default():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["compare"].format_help().split())
    for f in fields(CompareSettings):
        opt = f.metadata["option"]
        flag = f"--no-{opt.flag[2:]}" if f.default is True else opt.flag
        if opt.flag is not None:
            assert flag in text, flag
    assert "(default: lime,shap)" in text and "(default: 2500)" in text and "(default: pair)" in text
    assert "accuracy=0.01" in text  # --margin lists the margins' defaults


def test_replace_refuses_an_unknown_option_like_a_call():
    with pytest.raises(TypeError, match="lime_sample"):
        CompareSettings().replace(lime_sample=10)


# ---- training settings --------------------------------------------------------

TRAIN = [f.name for f in fields(TrainSettings)]
TRAIN_VALID = {"epochs": "2", "learning_rate": "0.001", "batch_size": "8", "max_length": "64", "freeze_layers": "1",
               "seed": "4", "weight_decay": "0.1", "checkpoint_every": "50"}
TRAIN_INVALID = {"epochs": "0", "learning_rate": "-1", "batch_size": "0", "max_length": "0", "freeze_layers": "-1",
                 "seed": "x", "weight_decay": "-0.5", "checkpoint_every": "0"}


def _train_args(command, extra=()):
    base = {"finetune": ["finetune", "--base", "b", "--data", "d", "--task", "nli", "--out", "o"],
            "compress": ["compress", "--model", "m", "--method", "int8", "--out", "o"]}[command]
    return build_parser().parse_args([*base, *extra])


def test_training_defaults_are_the_api_defaults():
    from trusteq.cli import _settings

    assert _settings(_train_args("finetune")) == TrainSettings()
    assert _settings(_train_args("compress"), compression=True) == TrainSettings.for_compression()


@pytest.mark.parametrize("name", TRAIN)
def test_training_option_flag_and_study_key(name):
    from trusteq.cli import _settings

    opt = option_of(TrainSettings, name)
    expected = type(getattr(TrainSettings(), name))(TRAIN_VALID[name])
    assert getattr(_settings(_train_args("finetune", [opt.flag, TRAIN_VALID[name]])), name) == expected
    assert getattr(settings_from_mapping(TrainSettings, {name: TRAIN_VALID[name]}), name) == expected


@pytest.mark.parametrize("name", TRAIN)
def test_training_option_refuses_a_bad_value(name, tmp_path, capsys):
    opt = option_of(TrainSettings, name)
    argv = ["finetune", "--base", "b", "--data", str(tmp_path / "never-read.tsv"), "--task", "nli",
            "--out", str(tmp_path / "out"), opt.flag, TRAIN_INVALID[name]]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (name in err[0] or opt.flag in err[0]), err
    with pytest.raises(TrustEqError, match=name):
        settings_from_mapping(TrainSettings, {name: TRAIN_INVALID[name]}, where="s.yaml: models.m.finetune")


def test_an_internal_bug_is_not_bad_input(monkeypatch):
    """Only a TrustEqError is the user's: anything else propagates with its traceback (exit code 1), even a
    ValueError, instead of passing for an input error."""
    import trusteq.comparison

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(trusteq.comparison, "compare", broken)
    argv = [a.replace("DATA", "d.tsv").replace("OUT", "out-never-written") for a in REQUIRED]
    with pytest.raises(ValueError, match="an internal bug"):
        main(argv)


@pytest.mark.parametrize("argv", [
    ["compress", "--method", "prune:0.5", "--model", "{empty}"],
    ["finetune", "--base", "{empty}", "--data", "{data}", "--task", "pi"],
])
def test_workshop_refuses_a_folder_that_is_no_model_in_one_line(argv, tmp_path, shared_data, capsys):
    """A model the workshop cannot load is the user's error (exit 2, one line naming it), not a traceback."""
    (tmp_path / "empty").mkdir()
    fill = {"{empty}": str(tmp_path / "empty"), "{data}": str(shared_data / "mrpc_glue/train.tsv")}
    assert main([fill.get(a, a) for a in argv] + ["--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "empty") in err[0] and "cannot load" in err[0], err
