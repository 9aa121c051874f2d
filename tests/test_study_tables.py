"""README's results tables of the headline study are the ones studies/tables.py writes from the
committed report.json files (issue #17: README's tables match report.json)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ["minilm-families/snli", "minilm-families/snli/paper-protocol", "minilm-families/mrpc"]


def _tables():
    spec = importlib.util.spec_from_file_location("study_tables", ROOT / "studies" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tables


@pytest.mark.parametrize("folder", REPORTS)
def test_readme_tables_match_the_committed_report(folder):
    report = ROOT / "studies" / folder / "report.json"
    assert report.is_file(), f"{report} is not committed"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for table in _tables()(report).split("\n\n"):
        assert table in readme, f"README lacks this table of {folder}:\n{table}"
