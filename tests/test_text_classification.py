"""Single texts and any label set (--task text-classification): loading, labels, prediction, explanations, verdict."""

import json

import numpy as np
import pytest

import controls
import trusteq
from conftest import make_bert
from trusteq.cli import main
from trusteq.data import ColumnMap, load_dataset
from trusteq.errors import DataError, LabelError
from trusteq.explain import REGISTRY, exact_cost, explain_examples, render, segment
from trusteq.models import TaskModel, load_model

AG = ("World", "Sports", "Business", "Sci/Tech")
TC = "text-classification"


def run_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def ag_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("agmodels")
    return {"ref": make_bert(root / "ref", AG, seed=0, layers=2),
            # the same classes in another output order: matched by name
            "small": make_bert(root / "small", ("Sports", "Sci/Tech", "World", "Business"), seed=1, layers=1),
            "generic": make_bert(root / "generic", [f"LABEL_{i}" for i in range(4)], seed=2, layers=1)}


# ---------------------------------------------------------------------------
# loading


def test_recognised_single_text_formats_get_their_standard_label_names(shared_data):
    ag = load_dataset(shared_data / "ag_news/test.tsv", TC)
    assert (ag.format, ag.kind, len(ag)) == ("ag_news", "single", 3800)
    assert ag.label_names == ("world", "sports", "business", "sci/tech")
    assert [int(np.sum(ag.y == k)) for k in range(4)] == [921, 950, 989, 940]  # shared/data/README.md
    assert all(e.text_b is None for e in ag.examples) and ag.pairs[0][1] is None
    assert '""' not in ag.examples[35].text_a and '"more bang' in ag.examples[35].text_a  # csv quoting
    sst = load_dataset(shared_data / "sst2/validation.tsv", TC)
    assert (sst.format, sst.label_names, len(sst)) == ("sst2", ("negative", "positive"), 872)
    assert [int(np.sum(sst.y == k)) for k in range(2)] == [428, 444]


def test_generic_files_with_one_text_column(tmp_path):
    rows = [("good film", "pos"), ("bad film", "neg"), ("fine", "meh")]
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("review,stars\n" + "".join(f"{t},{s}\n" for t, s in rows))
    ds = load_dataset(csv_path, TC, columns=ColumnMap("review", None, "stars"))
    assert ds.label_names == ("meh", "neg", "pos")  # names found in the data, sorted
    # a class absent from the file is kept when --label-names names every class
    full = load_dataset(csv_path, TC, columns=ColumnMap("review", None, "stars"),
                        label_names=["neg", "meh", "ok", "pos"])
    assert full.label_names == ("neg", "meh", "ok", "pos") and full.y.tolist() == [3, 0, 1]
    assert ds.kind == "single" and ds.examples[0].text_b is None
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps({"t": t, "y": i % 2}) + "\n" for i, (t, _) in enumerate(rows)))
    ds = load_dataset(jsonl, TC, columns=ColumnMap("t", None, "y"), label_names=["neg", "pos"])
    assert ds.label_names == ("neg", "pos") and [e.label for e in ds.examples] == ["neg", "pos", "neg"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"t": [t for t, _ in rows], "y": [1, 0, 2]}), tmp_path / "t.parquet")
    ds = load_dataset(tmp_path / "t.parquet", TC, columns=ColumnMap("t", None, "y"), label_names=["a", "b", "c"])
    assert [e.label for e in ds.examples] == ["b", "a", "c"]


def test_pair_files_are_text_classification_too(shared_data):
    snli = load_dataset(shared_data / "snli/test.tsv", TC, limit=20)
    assert snli.kind == "pair" and snli.label_names == ("entailment", "neutral", "contradiction")
    mrpc = load_dataset(shared_data / "mrpc_glue/test.tsv", TC, label_names=["different", "same"])
    assert mrpc.label_names == ("different", "same") and mrpc.examples[0].label == "same"


def test_clear_errors(shared_data, tmp_path):
    with pytest.raises(DataError, match=r"ag_news/test.tsv: row 1, field 'text': task 'nli' classifies sentence "
                                        r"pairs but the data has single texts"):
        load_dataset(shared_data / "ag_news/test.tsv", "nli")
    with pytest.raises(DataError, match="GLUE file codes its labels 0/1 per dataset.*--label-names"):
        load_dataset(shared_data / "mrpc_glue/test.tsv", TC)
    bad = tmp_path / "b.csv"
    bad.write_text("text,label\nfine,0\nok,1\n")
    with pytest.raises(DataError, match=r"b.csv: row 2, field 'label': unknown label '0'.*--label-names"):
        load_dataset(bad, TC, columns=ColumnMap("text", None, "label"))
    bad.write_text("text,label\nfine,x\nok,y\n")
    with pytest.raises(DataError, match=r"row 3, field 'label': unknown label 'y'.*expected one of \['x'\]"):
        load_dataset(bad, TC, columns=ColumnMap("text", None, "label"), label_names=["x"])
    bad.write_text("text,label\nfine,x\n,x\n")
    with pytest.raises(DataError, match=r"row 3, field 'text': empty text"):
        load_dataset(bad, TC, columns=ColumnMap("text", None, "label"))


def test_cli_errors_exit_2(ag_models, shared_data, tmp_path, capsys):
    base = ["compare", "--reference", ag_models["ref"], "--candidate", ag_models["small"], "--out", tmp_path / "o"]
    assert run_cli(*base, "--data", shared_data / "ag_news/test.tsv", "--task", "pi") == 2
    assert "task 'pi' classifies sentence pairs but the data has single texts" in capsys.readouterr().err
    assert run_cli(*base, "--data", shared_data / "ag_news/test.tsv", "--task", TC, "--text", "text",
                   "--text-a", "text", "--label", "label") == 2
    assert "give one of --text" in capsys.readouterr().err
    assert run_cli(*base, "--data", shared_data / "ag_news/test.tsv", "--task", TC, "--protocol", "paper") == 2
    assert "defined for the tasks ['nli', 'pi'] only" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------
# labels and prediction


def test_labels_are_matched_by_name_and_generic_names_refused(ag_models, shared_data):
    ds = load_dataset(shared_data / "ag_news/test.tsv", TC, limit=5)
    small = TaskModel(load_model(str(ag_models["small"])), ds.label_names)
    assert small.columns.tolist() == [2, 0, 3, 1]  # world, sports, business, sci/tech in its output order
    with pytest.raises(LabelError, match="LABEL_0.*--label-map generic=world,sports,business,sci/tech"):
        TaskModel(load_model(str(ag_models["generic"])), ds.label_names)
    fixed = TaskModel(load_model(str(ag_models["generic"])), ds.label_names,
                      {"generic": ["Sports", "World", "Business", "Sci/Tech"]})
    assert fixed.columns.tolist() == [1, 0, 2, 3]


def test_single_texts_reach_the_model_as_one_segment(ag_models, shared_data):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ds = load_dataset(shared_data / "ag_news/test.tsv", TC, limit=12)
    model = TaskModel(load_model(str(ag_models["ref"]), batch_size=5), ds.label_names)
    probs = model(ds.pairs)
    tok = AutoTokenizer.from_pretrained(ag_models["ref"])
    hf = AutoModelForSequenceClassification.from_pretrained(ag_models["ref"]).eval()
    enc = tok([e.text_a for e in ds.examples], truncation=True, max_length=128, padding=True, return_tensors="pt")
    assert (enc["token_type_ids"] == 0).all()  # no second segment
    with torch.inference_mode():
        expected = torch.softmax(hf(**enc).logits.double(), -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be mixed"):
        model([("a text", None), ("a", "pair")])


# ---------------------------------------------------------------------------
# explanations


def topic_model(pairs):
    """'goal' -> Sports, 'market' -> Business (words anywhere in the single text)."""
    out = []
    for text, b in pairs:
        assert b is None
        words = text.lower().split()
        s = np.array([1.0, 1.0 + 3 * ("goal" in words), 1.0 + 2 * ("market" in words), 1.0])
        out.append(s / s.sum())
    return np.array(out)


TEXTS = [trusteq.data.Example("t1", "The striker scored a late goal as the market watched", None, "sports"),
         trusteq.data.Example("t2", "Stocks fell when the market opened", None, "business")]


@pytest.mark.parametrize("explainer", ["lime", "shap", "shap-permutation"])
def test_explainers_on_single_texts(explainer):
    out = explain_examples({"m": topic_model}, TEXTS, [1, 2], explainer=explainer, seed=0, budget=400)["m"]
    for e, word in zip(out, ("goal", "market")):
        assert {f.sentence for f in e.features} == {"a"}
        top = int(np.argmax(e.weights))
        assert e.features[top].word == word and e.weights[top] > 0


def test_shap_on_a_single_text_is_exact_and_efficient():
    ex = TEXTS[0]
    feats = segment(ex.text_a, None)
    assert render(ex.text_a, None, feats, np.ones(len(feats), bool)) == (ex.text_a, None)
    [e] = explain_examples({"m": topic_model}, [ex], [1], explainer="shap", seed=0, budget=2500)["m"]
    assert REGISTRY["shap"].exact(feats, 2500) and e.n_evals == exact_cost(len(feats), 0)
    full, empty = topic_model([(ex.text_a, None), render(ex.text_a, None, feats, np.zeros(len(feats), bool))])
    assert e.weights.sum() == pytest.approx(full[1] - empty[1])


# ---------------------------------------------------------------------------
# the verdict on controls and the whole command


@pytest.fixture(scope="module")
def single_controls():
    return controls.run(single=True)


@pytest.mark.slow
def test_single_text_controls(single_controls):
    v = single_controls["comparisons"]
    assert single_controls.summary["task"] == TC and single_controls.summary["data"]["texts"] == "single"
    assert v["identical"]["verdict"]["overall"] == "equivalent"
    dims = {d: x["decision"] for d, x in v["other_reasons"]["verdict"]["dimensions"].items()}
    assert dims == {"predictions": "equivalent", "calibration": "equivalent",
                    "explanations.lime": "not equivalent", "explanations.shap": "not equivalent"}
    assert v["temperature"]["verdict"]["dimensions"]["calibration"]["decision"] == "not equivalent"


@pytest.mark.slow
def test_cli_on_ag_news(ag_models, shared_data, tmp_path):
    out = tmp_path / "out"
    assert run_cli("compare", "--reference", ag_models["ref"], "--candidate", ag_models["small"], "--data",
                   shared_data / "ag_news/test.tsv", "--task", TC, "--limit", 150, "--explain-limit", 4,
                   "--explain-all", "--lime-samples", 100, "--bootstrap", 200, "--no-progress", "--out", out) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["task"] == TC and r["labels"] == ["world", "sports", "business", "sci/tech"]
    assert r["data"]["texts"] == "single" and r["data"]["format"] == "ag_news"
    assert r["comparisons"]["small"]["verdict"]["overall"] in ("equivalent", "not equivalent", "inconclusive")
    records = [json.loads(line) for line in (out / "explanations.jsonl").read_text().splitlines()]
    assert records and all(f["sentence"] == "a" for rec in records for f in rec["features"])
    assert (out / "predictions.csv").read_text().splitlines()[0].startswith("example_id,model,label,prob_world")
    html = (out / "report.html").read_text()
    assert "texts &gt; 10 words" in html and "<i>B</i>" not in html
