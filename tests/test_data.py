import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trusteq.data import ColumnMap, load_dataset, normalize_label
from trusteq.errors import DataError

# (path, task, rows, label counts) as stated in ../shared/data/README.md
SHARED_FILES = [
    ("snli/test.tsv", "nli", 9824, {"entailment": 3368, "neutral": 3219, "contradiction": 3237}),
    ("snli/validation.tsv", "nli", 9842, None),
    ("mnli/taxinli10k_MNLIDev.tsv", "nli", 7727, None),
    ("mrpc_glue/test.tsv", "pi", 1725, {"paraphrase": 1147, "not_paraphrase": 578}),
    ("mrpc_glue/train.tsv", "pi", 3668, None),
    ("mrpc/msr_paraphrase_test.txt", "pi", 1725, {"paraphrase": 1147, "not_paraphrase": 578}),
    ("mrpc/msr_paraphrase_train.txt", "pi", 4076, None),
    ("rte/validation.tsv", "nli", 277, None),
    ("sick/SICK.txt", "nli", 9840, {"neutral": 5595, "entailment": 2821, "contradiction": 1424}),
]


@pytest.mark.parametrize("rel,task,rows,counts", SHARED_FILES)
def test_shared_files(shared_data, rel, task, rows, counts):
    ds = load_dataset(shared_data / rel, task)
    assert len(ds) == rows
    assert len(set(ds.ids)) == rows
    if counts:
        assert dict(Counter(e.label for e in ds.examples)) == counts
    assert all(e.text_a and e.text_b for e in ds.examples)


def test_msr_and_glue_mrpc_agree_on_labels(shared_data):
    glue = load_dataset(shared_data / "mrpc_glue/test.tsv", "pi")
    msr = load_dataset(shared_data / "mrpc/msr_paraphrase_test.txt", "pi")
    assert [e.label for e in glue.examples] == [e.label for e in msr.examples]
    assert msr.examples[0].text_a.startswith("PCCW's chief operating officer")  # BOM and CRLF removed
    assert not msr.examples[0].text_b.endswith("\r")


def test_rte_is_two_way_and_snli_three_way(shared_data):
    assert load_dataset(shared_data / "rte/validation.tsv", "nli").label_names == ("entailment", "not_entailment")
    assert load_dataset(shared_data / "snli/test.tsv", "nli").label_names == ("entailment", "neutral",
                                                                             "contradiction")


def test_quoted_fields_are_unquoted(shared_data):
    ds = load_dataset(shared_data / "mrpc_glue/test.tsv", "pi")
    ex = next(e for e in ds.examples if e.id == "17")
    assert ex.text_a.startswith('Moroccan Interior Minister') and '" points to a group' in ex.text_a


def test_limit_is_seeded_sample_in_file_order(shared_data):
    a = load_dataset(shared_data / "snli/test.tsv", "nli", limit=50, seed=3)
    b = load_dataset(shared_data / "snli/test.tsv", "nli", limit=50, seed=3)
    c = load_dataset(shared_data / "snli/test.tsv", "nli", limit=50, seed=4)
    assert a.ids == b.ids != c.ids
    assert [int(i) for i in a.ids] == sorted(int(i) for i in a.ids)
    assert a.n_rows == 9824 and len(a) == 50


def test_generic_csv_with_names(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('q1,q2,gold,key\n"Hello, world",Hi there,equivalent,x1\nA cat,A dog,not_equivalent,x2\n')
    ds = load_dataset(f, "pi", columns=ColumnMap("q1", "q2", "gold", id="key"))
    assert ds.ids == ["x1", "x2"]
    assert [e.label for e in ds.examples] == ["paraphrase", "not_paraphrase"]
    assert ds.examples[0].text_a == "Hello, world"


def test_generic_tsv_without_header_and_codes(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("2\tA man sleeps.\tA man is awake.\n0\tA dog runs.\tAn animal moves.\n")
    cols = ColumnMap(1, 2, 0, header=False, label_names=("entailment", "neutral", "contradiction"))
    ds = load_dataset(f, "nli", columns=cols)
    assert [e.label for e in ds.examples] == ["contradiction", "entailment"]
    assert ds.ids == ["0", "1"]


def test_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"s1": "A b", "s2": "C d", "y": "paraphrase"}, {"s1": "E f", "s2": "G h", "y": "not_paraphrase"}]
    j = tmp_path / "d.jsonl"
    j.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p)
    cols = ColumnMap("s1", "s2", "y")
    for f in (j, p):
        ds = load_dataset(f, "pi", columns=cols)
        assert [e.label for e in ds.examples] == ["paraphrase", "not_paraphrase"]


def test_normalize_label():
    assert normalize_label(" Not-Entailment ") == "not_entailment"
    assert normalize_label("ENTAILMENT") == "entailment"
    assert normalize_label("not equivalent") == "not_paraphrase"


# ---- failure messages: file, row and field in one line -------------------


def _error(path, task="nli", columns=None) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, task, columns=columns)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_column(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,label\nx,y,entailment\n")
    msg = _error(f, columns=ColumnMap("a", "hypothesis", "label"))
    assert str(f) in msg and "row 1" in msg and "field 'hypothesis'" in msg and "missing column" in msg


def test_unknown_label(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA\tB\t0\nC\tD\t7\n")
    msg = _error(f)
    assert "row 3" in msg and "field 'label'" in msg and "unknown label code 7" in msg


def test_unknown_label_name(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,y\nx,y,maybe\n")
    msg = _error(f, columns=ColumnMap("a", "b", "y"))
    assert "row 2" in msg and "'maybe'" in msg and "entailment" in msg


def test_missing_label(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,y\nx,y,\n")
    assert "missing label" in _error(f, columns=ColumnMap("a", "b", "y"))


def test_empty_text(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA man.\t   \t1\n")
    msg = _error(f)
    assert "row 2" in msg and "field 'hypothesis'" in msg and "empty text" in msg


def test_undecodable_bytes(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_bytes(b"premise\thypothesis\tlabel\nA\tB\t0\nC \xff\xfe\tD\t1\n")
    msg = _error(f)
    assert "row 3" in msg and "UTF-8" in msg


def test_unreadable_and_missing_file(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.tsv")
    assert "not a regular file" in _error(tmp_path)


def test_empty_and_header_only(tmp_path):
    e = tmp_path / "e.tsv"
    e.write_text("")
    assert "empty" in _error(e)
    h = tmp_path / "h.tsv"
    h.write_text("premise\thypothesis\tlabel\n")
    assert "no data rows" in _error(h)


def test_duplicate_ids(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("id,a,b,y\n1,x,y,paraphrase\n1,z,w,paraphrase\n")
    msg = _error(f, "pi", ColumnMap("a", "b", "y", id="id"))
    assert "duplicate example id '1'" in msg and "row 3" in msg and "row 2" in msg


def test_wrong_field_count(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA\tB\n")
    assert "row 2" in _error(f) and "expected 3 fields" in _error(f)


def test_unrecognised_header_asks_for_columns(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("x\ty\tz\nA\tB\t0\n")
    assert "--text-a" in _error(f)


def test_mixed_two_and_three_way(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,y\nx,y,neutral\nx,z,not_entailment\n")
    assert "mix" in _error(f, columns=ColumnMap("a", "b", "y"))


def test_hf_dataset_names(monkeypatch):
    """hf:NAME[:CONFIG] goes through datasets.load_dataset (stubbed: no network in tests)."""
    import sys
    import types

    class Names:
        names = ["not_equivalent", "equivalent"]

    class FakeDS(list):
        column_names = ["sentence1", "sentence2", "label", "idx"]
        features = {"label": Names()}

    calls = []

    def load(path, config, split):
        calls.append((path, config, split))
        return FakeDS([{"sentence1": "A b.", "sentence2": "C d.", "label": 1, "idx": 7}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load))
    ds = load_dataset("hf:glue:mrpc", "pi", split="test")
    assert calls == [("glue", "mrpc", "test")]
    assert ds.ids == ["7"] and ds.examples[0].label == "paraphrase" and ds.format == "hf"


def test_skip_invalid_lists_every_dropped_row(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_bytes(b"premise\thypothesis\tlabel\n"
                  b"A man.\tA person.\t0\n"           # row 2 ok
                  b"A dog.\t \t1\n"                   # row 3 empty text
                  b"A cat.\tAn animal.\t9\n"          # row 4 unknown label
                  b"Caf\xe9 time.\tCoffee.\t1\n"      # row 5 undecodable
                  b"A b.\tC d.\n"                     # row 6 wrong field count
                  b"Two kids.\tChildren.\t0\n")       # row 7 ok
    with pytest.raises(DataError, match="row 3"):
        load_dataset(f, "nli")
    ds = load_dataset(f, "nli", skip_invalid=True)
    assert ds.ids == ["0", "5"]
    assert [(d["row"], d["field"]) for d in ds.dropped] == [(3, "hypothesis"), (4, "label"), (5, "premise"),
                                                           (6, None)]
    assert "UTF-8" in ds.dropped[2]["reason"] and "empty text" in ds.dropped[0]["reason"]
    assert ds.n_rows == 6


def test_skip_invalid_with_nothing_valid(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("premise\thypothesis\tlabel\nA\t \t0\n")
    with pytest.raises(DataError, match="no valid rows"):
        load_dataset(f, "nli", skip_invalid=True)


def test_bom_and_crlf(tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes("\ufeffs1,s2,y\r\nA man.,A person.,entailment\r\nUn homme.,\u00c9mile 😀.,neutral\r\n".encode())
    ds = load_dataset(f, "nli", columns=ColumnMap("s1", "s2", "y"))
    assert [(e.text_a, e.text_b) for e in ds.examples] == [("A man.", "A person."), ("Un homme.", "\u00c9mile 😀.")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=40).filter(lambda t: t.strip()),
                          st.text(min_size=1, max_size=40).filter(lambda t: t.strip()),
                          st.sampled_from(["paraphrase", "not_paraphrase"])), min_size=1, max_size=8))
def test_arbitrary_text_round_trips_through_csv(tmp_path_factory, rows):
    import csv

    f = tmp_path_factory.mktemp("rt") / "d.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "y"])
        w.writerows(rows)
    ds = load_dataset(f, "pi", columns=ColumnMap("a", "b", "y"))
    assert [(e.text_a, e.text_b, e.label) for e in ds.examples] == [(a.strip(), b.strip(), y) for a, b, y in rows]
