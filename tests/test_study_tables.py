"""The results tables of the headline study (docs/results.md) are the ones studies/tables.py writes
from the committed report.json files (issue #17: the documented tables match report.json)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"  # the page the results tables live on (README links to it)
REPORTS = ["minilm-families/snli", "minilm-families/snli/paper-protocol", "minilm-families/mrpc", "llm-sst2/sst2",
           "fashion-mnist/fashion-mnist", "fashion-mnist/fashion-mnist/all-explained", "search/snli/search/search.json",
           "search/mrpc/search/search.json"]


def _tables():
    spec = importlib.util.spec_from_file_location("study_tables", ROOT / "studies" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tables


@pytest.mark.parametrize("folder", REPORTS)
def test_results_tables_match_the_committed_report(folder):
    report = ROOT / "studies" / folder / ("" if folder.endswith(".json") else "report.json")
    assert report.is_file(), f"{report} is not committed"
    page = RESULTS.read_text(encoding="utf-8")
    for table in _tables()(report).split("\n\n"):
        assert table in page, f"{RESULTS.relative_to(ROOT)} lacks this table of {folder}:\n{table}"
