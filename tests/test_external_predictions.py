"""Predictions from a file (trusteq.PredictionsFile, --candidate-predictions, --reference-predictions): a model
trusteq cannot run, compared by its stored probabilities, on tiny random BERT models and a small SNLI-format file."""

import csv
import json
import random

import numpy as np
import pytest

import trusteq
from conftest import NLI, WORDS, assert_reports_close
from trusteq.cli import main
from trusteq.data import load_dataset
from trusteq.executors import LocalExecutor
from trusteq.external import NO_MODEL_REASON, PredictionsFile
from trusteq.models import TaskModel
from trusteq.predict import predict

N = 60
FAST = dict(task="nli", explainers=(), n_boot=200, progress=False)
EXPLAIN = dict(task="nli", explainers=("lime",), lime_samples=30, explain_limit=2, explain_all=True, n_boot=100,
               progress=False)


def snli_file(path, n=N, bad_row=None):
    """An SNLI-format file of ``n`` random pairs (ids "0".."n-1"); ``bad_row``: that example gets label code 7."""
    rng = random.Random(0)
    text = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))  # noqa: E731
    rows = [f"{text()}\t{text()}\t{7 if i == bad_row else i % 3}" for i in range(n)]
    path.write_text("premise\thypothesis\tlabel\n" + "\n".join(rows) + "\n")
    return path


def write_predictions(path, ids, probs, labels=NLI, prefix="prob_"):
    """``probs`` (n, K) of examples ``ids`` as a CSV, TSV, JSONL or Parquet predictions file (by suffix)."""
    columns = [f"{prefix}{c}" for c in labels]
    records = [{"id": i, **{c: float(v) for c, v in zip(columns, row)}} for i, row in zip(ids, probs)]
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writerow(["id", *columns])
            w.writerows([r["id"], *map(repr, list(r.values())[1:])] for r in records)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return snli_file(tmp_path_factory.mktemp("data") / "test.tsv")


@pytest.fixture(scope="module")
def base(nli_models, data):
    """The reference and the small model, both run by trusteq."""
    return trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], str(data), **FAST)


@pytest.fixture(scope="module")
def files(base, tmp_path_factory):
    """Each model's own probabilities as a predictions file."""
    folder = tmp_path_factory.mktemp("preds")
    return {m: write_predictions(folder / f"{m}.csv", base.dataset.ids, base.probs[m]) for m in ("ref", "small")}


def assert_same_statistics(a, b, candidate="small"):
    """Every number of the agreement, flips, KL, McNemar, deltas, the candidate's calibration and its predictions
    and calibration verdict within 1e-6 (keys alike)."""
    ca, cb = a["comparisons"][candidate], b["comparisons"][candidate]
    for key in ("agreement", "flip_rate", "kl", "mcnemar", "delta"):
        assert_reports_close(ca[key], cb[key], path=key)
    for dim in ("predictions", "calibration"):
        assert_reports_close(ca["verdict"]["dimensions"][dim], cb["verdict"]["dimensions"][dim], path=dim)
    for name in (a["reference"], candidate):
        ma, mb = ({k: v for k, v in s["models"][name].items() if k not in PROVENANCE} for s in (a, b))
        assert_reports_close(ma, mb, path=name)


PROVENANCE = ("kind", "class_names", "fingerprint", "max_length", "source", "parameters", "device", "path", "sha256",
              "rows")


# ---- (a) the same statistics as the model run by trusteq -------------------


def test_file_candidate_gives_the_models_statistics(nli_models, data, base, files):
    r = trusteq.compare(str(nli_models["ref"]), [PredictionsFile(files["small"], name="small")], str(data), **FAST)
    assert_same_statistics(base, r)
    info = r["models"]["small"]
    assert info["kind"] == "predictions-file" and info["path"] == str(files["small"])
    assert len(info["sha256"]) == 64 and info["fingerprint"] is None
    assert r["settings"]["batching"]["small"]["batching"] == "none (stored predictions)"


def test_file_reference_gives_the_models_statistics(nli_models, data, base, files):
    r = trusteq.compare(PredictionsFile(files["ref"]), [str(nli_models["small"])], str(data), **FAST)
    assert r["reference"] == "ref"  # the file stem
    assert_same_statistics(base, r)


def test_never_run_cached_or_sent_to_an_executor(data, files, tmp_path, monkeypatch):
    class NoExecutor:
        def run(self, units):
            raise AssertionError("a predictions file reached the executor")

    cache = tmp_path / "cache"
    monkeypatch.setenv("TRUSTEQ_CACHE_DIR", str(cache))
    ds = load_dataset(data, "nli")
    clf = PredictionsFile(files["small"])
    clf.bind(ds)
    out = predict(TaskModel(clf, ds.label_names), ds, executor=NoExecutor())
    assert out.probs.shape == (N, 3) and not out.cached and out.truncated == 0
    assert not cache.exists() or not any(cache.rglob("*"))
    with pytest.raises(trusteq.ModelError, match="cannot be run on new texts"):
        clf.predict_proba([("a man", "a dog")])


# ---- (c) explanations: not available -----------------------------------------


class Watch(LocalExecutor):
    """The local executor, refusing a unit of a model with nothing to run (Ray actors get the same units)."""

    def run(self, units):
        assert not any(u.model.model.no_model for u in units), "a predictions file reached the executor"
        yield from super().run(units)


def _reasons(result, candidate):
    dims = result["comparisons"][candidate]["verdict"]["dimensions"]
    return {d: {p["reason"] for p in x["parts"].values()} for d, x in dims.items() if d.startswith("explanations.")}


@pytest.mark.slow  # ONNX twins of two models, explained
def test_file_candidate_is_never_explained(nli_models, data, files):
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"]), PredictionsFile(files["small"], name="ext")],
                        str(data), **EXPLAIN, executor=Watch())
    assert _reasons(r, "ext") == {"explanations.lime": {NO_MODEL_REASON}}
    assert r["comparisons"]["ext"]["verdict"]["dimensions"]["explanations.lime"]["decision"] == "inconclusive"
    assert {run.model for run in r.explanations["lime"].runs} == {"ref", "small"}  # explain_all: every other model
    assert set(r["settings"]["explain_runtime"]) == {"ref", "small"} and "alignment" not in r["comparisons"]["ext"]


def test_file_reference_means_no_explanations(nli_models, data, files, tmp_path):
    candidates = [str(nli_models["small"]), PredictionsFile(files["small"], "ext")]
    r = trusteq.compare(PredictionsFile(files["ref"]), candidates, str(data), **EXPLAIN)
    assert r.explanations == {} and r.explained_ids == []
    assert _reasons(r, "small") == _reasons(r, "ext") == {"explanations.lime": {NO_MODEL_REASON}}
    page = trusteq.write_report(r, tmp_path / "out")
    assert NO_MODEL_REASON in (page.parent / "report.md").read_text()


@pytest.mark.slow  # ONNX twins of two models, explained
def test_paper_protocol_skips_the_file(nli_models, data, files):
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"]), PredictionsFile(files["small"], name="ext")],
                        str(data), **EXPLAIN, protocol="paper", executor=Watch())
    assert _reasons(r, "ext") == {"explanations.lime": {NO_MODEL_REASON}}
    assert NO_MODEL_REASON not in _reasons(r, "small")["explanations.lime"]
    assert {run.model for run in r.explanations["lime"].runs} == {"ref", "small"}


@pytest.mark.slow  # ONNX twins of two models, explained
@pytest.mark.parametrize("protocol", ["pair", "paper"])
def test_slices_of_a_file_candidate_say_why(nli_models, base, tmp_path, protocol):
    data = tmp_path / "genres.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "a", "b", "y", "genre"])
        w.writerows([i, e.text_a, e.text_b, e.label, "odd" if int(i) % 2 else "even"]
                     for i, e in zip(base.dataset.ids, base.dataset.examples))
    ext = write_predictions(tmp_path / "ext.csv", base.dataset.ids, base.probs["small"])
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"]), PredictionsFile(ext)], str(data),
                        **EXPLAIN, protocol=protocol, columns=trusteq.ColumnMap("a", "b", "y", "id"), slices=("genre",))
    for value in ("even", "odd"):
        dims = r["comparisons"]["ext"]["slices"][f"genre={value}"]["verdict"]["dimensions"]
        assert {p["reason"] for p in dims["explanations.lime"]["parts"].values()} == {NO_MODEL_REASON}


# ---- (d) formats -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("prefix", ["prob_", ""])
def test_formats_and_column_spellings(data, tmp_path, suffix, prefix):
    ds = load_dataset(data, "nli")
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=N)
    order = np.random.default_rng(1).permutation(N)  # rows in any order, classes in another order
    labels = ("Contradiction", "entailment", "neutral")
    f = write_predictions(tmp_path / f"p{suffix}", [ds.ids[i] for i in order], probs[order][:, [2, 0, 1]], labels,
                          prefix)
    clf = PredictionsFile(f)
    clf.bind(ds)
    assert np.array_equal(TaskModel(clf, ds.label_names).lookup(ds.ids), probs)


def test_limit_sample_ignores_rows_outside_it(data, files):
    sample = load_dataset(data, "nli", limit=20, seed=3)
    clf = PredictionsFile(files["small"])
    clf.bind(sample)  # 40 rows of examples outside the sample: expected, ignored
    assert clf.lookup(sample.ids).shape == (20, 3)


def test_rows_of_dropped_examples_are_ignored(tmp_path, files):
    ds = load_dataset(snli_file(tmp_path / "bad.tsv", bad_row=4), "nli", skip_invalid=True)
    assert [d["id"] for d in ds.dropped] == ["4"]
    clf = PredictionsFile(files["small"])
    clf.bind(ds)
    assert clf.lookup(ds.ids).shape == (N - 1, 3)


# ---- (b) errors: one DataError naming the file, row and column ------------------


def _lines(files):
    return files["small"].read_text().splitlines()


def _edit(lines, row, column, value):
    """``lines`` with the cell of ``column`` (0-based) on line ``row`` (1-based) set to ``value``."""
    out = list(lines)
    cells = out[row - 1].split(",")
    cells[column] = value
    out[row - 1] = ",".join(cells)
    return out


ERRORS = {
    # name: (lines of the CSV from the lines of a good one, expected parts of the message)
    "missing ids": (lambda ls: [ls[0]] + [x for x in ls[1:] if x.split(",")[0] not in ("5", "7")],
                    ["field 'id'", "2 of the data's 60 example ids have no row, the first '5'"]),
    "id not in the data": (lambda ls: ls + ["999,0.2,0.3,0.5"], ["row 62, field 'id'", "'999' is not an example id"]),
    "duplicate id": (lambda ls: ls + [ls[4]], ["row 62, field 'id'", "duplicate id '3' (first at row 5)"]),
    "above 1": (lambda ls: _edit(ls, 4, 1, "1.5"), ["row 4, field 'prob_entailment'", "1.5", "outside [0, 1]"]),
    "negative": (lambda ls: _edit(ls, 3, 2, "-0.1"), ["row 3, field 'prob_neutral'", "outside [0, 1]"]),
    "not a number": (lambda ls: _edit(ls, 6, 3, "high"), ["row 6, field 'prob_contradiction'", "not a number: 'high'"]),
    "empty cell": (lambda ls: _edit(ls, 6, 3, ""), ["row 6, field 'prob_contradiction'", "missing probability"]),
    "sum": (lambda ls: _edit(_edit(_edit(ls, 7, 1, "0.5"), 7, 2, "0.3"), 7, 3, "0.1"),
            ["row 7: ", "sum to 0.9", "within 0.0001"]),
    "unknown column": (lambda ls: [ls[0] + ",x"] + [x + ",1" for x in ls[1:]],
                       ["row 1, field 'x'", "unknown column", "'id'", "entailment, neutral, contradiction"]),
    "class without column": (lambda ls: [",".join(x.split(",")[:3]) for x in ls],
                             ["row 1, field 'contradiction'", "no column for class 'contradiction'"]),
    "two columns for a class": (lambda ls: [_edit(ls, 1, 3, "entailment")[0]] + ls[1:],
                                ["row 1, field 'entailment'", "second column for class 'entailment'"]),
    "misnamed id column": (lambda ls: [_edit(ls, 1, 0, "idx")[0]] + ls[1:], ["row 1, field 'idx'", "unknown column"]),
    "no id column": (lambda ls: [",".join(x.split(",")[1:]) for x in ls], ["row 1, field 'id'", "no 'id' column"]),
    "empty file": (lambda ls: [], ["the file is empty"]),
    "header only": (lambda ls: ls[:1], ["header line but no rows"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_file_row_and_column(nli_models, data, files, tmp_path, case):
    make, expected = ERRORS[case]
    f = tmp_path / "ext.csv"
    f.write_text("\n".join(make(_lines(files))) + "\n")
    with pytest.raises(trusteq.DataError) as err:
        trusteq.compare(str(nli_models["ref"]), [PredictionsFile(f)], str(data), **FAST)
    message = str(err.value)
    assert message.startswith(f"{f}: ")
    for part in expected:
        assert part in message, (part, message)


def test_jsonl_and_parquet_errors_name_the_line_and_record(data, tmp_path):
    ds = load_dataset(data, "nli")
    probs = np.full((N, 3), 1 / 3)
    probs[2] = [0.9, -0.8, 0.9]
    with pytest.raises(trusteq.DataError, match=r"p.jsonl: row 3, field 'prob_neutral': .*outside"):
        PredictionsFile(write_predictions(tmp_path / "p.jsonl", ds.ids, probs)).bind(ds)
    with pytest.raises(trusteq.DataError, match=r"p.parquet: row 2, field 'prob_neutral': .*outside"):  # 0-based
        PredictionsFile(write_predictions(tmp_path / "p.parquet", ds.ids, probs)).bind(ds)
    (tmp_path / "q.jsonl").write_text('{"id": "0", "entailment": 1, "neutral": 0, "contradiction": 0}\nnot json\n')
    with pytest.raises(trusteq.DataError, match=r"q.jsonl: row 2: not valid JSON"):
        PredictionsFile(tmp_path / "q.jsonl")
    (tmp_path / "r.txt").write_text("id,entailment\n")
    with pytest.raises(trusteq.DataError, match=r"r.txt: unknown format '.txt'"):
        PredictionsFile(tmp_path / "r.txt")


# ---- the command line ----------------------------------------------------------


def run_cli(*args):
    return main([str(a) for a in args])


def test_cli_predictions_flags(nli_models, data, files, tmp_path):
    out = tmp_path / "out"
    code = run_cli("compare", "--reference-predictions", files["ref"], "--candidate", nli_models["small"],
                   "--candidate-predictions", f"ext={files['small']}", "--data", data, "--task", "nli",
                   "--explainers", "lime", "--lime-samples", 30, "--explain-limit", 2, "--explain-all",
                   "--bootstrap", 100, "--no-progress", "--out", out)
    assert code == 0
    r = json.loads((out / "report.json").read_text())
    assert r["reference"] == "ref" and r["candidates"] == ["small", "ext"]
    assert r["models"]["ref"]["kind"] == r["models"]["ext"]["kind"] == "predictions-file"
    assert r["models"]["ext"]["path"] == str(files["small"])
    assert r["comparisons"]["ext"]["agreement"] == r["comparisons"]["small"]["agreement"]


def test_cli_bad_file_is_one_line_and_exit_2(nli_models, data, files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(_edit(_lines(files), 4, 1, "1.5")) + "\n")
    out = tmp_path / "out"
    code = run_cli("compare", "--reference", nli_models["ref"], "--candidate-predictions", f"ext={bad}", "--data",
                   data, "--task", "nli", "--explainers", "none", "--no-progress", "--out", out)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert err[0].startswith(f"trusteq: error: {bad}: row 4, field 'prob_entailment': ")


def test_cli_needs_a_candidate_and_one_reference(nli_models, data, files, tmp_path, capsys):
    code = run_cli("compare", "--reference", nli_models["ref"], "--data", data, "--task", "nli", "--out",
                   tmp_path / "o")
    assert code == 2 and "--candidate-predictions NAME=FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run_cli("compare", "--reference", nli_models["ref"], "--reference-predictions", files["ref"], "--candidate",
                nli_models["small"], "--data", data, "--task", "nli", "--out", tmp_path / "o")
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("compare", "--reference", nli_models["ref"], "--candidate-predictions", files["small"], "--data", data,
                "--task", "nli", "--out", tmp_path / "o")
    assert "expected NAME=FILE" in capsys.readouterr().err
