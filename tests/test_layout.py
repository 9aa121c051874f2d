"""The package layout: documented names import, validators name what is wrong, work fails before it starts."""

import re
import time
from pathlib import Path

import numpy as np
import pytest

import trusteq
from trusteq.cli import main
from trusteq.errors import ModelError, TrustEqError
from trusteq.validation import (check_at_least, check_option, check_output_dir, check_probabilities,
                                check_probability_matrix, check_same_shape)

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented_names() -> set[str]:
    # README.md and every page under docs/ it links to
    text = "\n".join(page.read_text(encoding="utf-8")
                     for page in [README, *sorted((README.parent / "docs").glob("*.md"))])
    names = set(re.findall(r"\btrusteq(?:\.[A-Za-z_]\w*)+", text))
    for module, imported in re.findall(r"^from (trusteq[\w.]*) import ([\w, ]+)$", text, flags=re.M):
        names |= {f"{module}.{n.strip()}" for n in imported.split(",")}
    return names


def _resolve(dotted: str):
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_name_readme_documents_imports():
    names = _documented_names()
    assert {"trusteq.compare", "trusteq.workshop.pull", "trusteq.explain.exact_cost"} <= names
    for dotted in sorted(names):
        assert _resolve(dotted) is not None, dotted


def test_layout_names_the_concepts():
    from trusteq import explain, metrics, workshop

    assert {"calibration", "agreement", "alignment", "stats"} <= {
        p.stem for p in Path(metrics.__file__).parent.glob("*.py")}
    assert {"_features", "_lime", "_shap", "_registry"} <= {
        p.stem for p in Path(explain.__file__).parent.glob("*.py")}
    assert {"encoders", "finetune", "compress"} <= {p.stem for p in Path(workshop.__file__).parent.glob("*.py")}


def test_registry_describes_every_explainer():
    from trusteq.explain import EXPLAINERS, REGISTRY, segment

    assert EXPLAINERS == ("lime", "shap", "shap-permutation")
    few, many = segment("a b", "c"), segment(" ".join("w" * k for k in range(1, 30)), "x y z")
    assert REGISTRY["shap"].exact(few, 500) and not REGISTRY["shap"].exact(many, 500)
    assert not REGISTRY["lime"].exact(few, 10**6) and REGISTRY["lime"].budget_option == "lime_samples"
    assert REGISTRY["shap-permutation"].budget_option == "shap_evals"


#: A test of an explainer's or a protocol's name: ``== "shap"``, ``"lime" in explainers``, ``protocol != ...``.
NAME_TEST = re.compile(r"""[=!]=\s*["'](lime|shap|shap-permutation|pair|paper)["']"""
                       r"""|["'](lime|shap|shap-permutation|pair|paper)["']\s+(not\s+)?in\b"""
                       r"""|\bprotocol\b\s*[=!]=|\bexplainer\b\s*[=!]=\s*["']""")


def test_no_explainer_or_protocol_is_special_cased_by_name():
    """Explainers are read from their registry and protocols are objects (trusteq.protocols): nowhere in src/ is
    a name tested, but in the protocol module itself."""
    src = Path(trusteq.__file__).parent
    found = [f"{path.relative_to(src)}:{n}: {line.strip()}" for path in sorted(src.rglob("*.py"))
             if path.name != "protocols.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if NAME_TEST.search(line)]
    assert not found, found


def test_the_name_guard_catches_what_it_is_for():
    for line in ('if explainer == "shap":', "x = 'lime' in explainers", 'if s.protocol == "paper":',
                 'paper = options.get("protocol", "pair") == "paper"', "if protocol != other:"):
        assert NAME_TEST.search(line), line
    for line in ('explainers = ("lime", "shap")', 'REGISTRY["shap"]', 'name = "paper"'):
        assert not NAME_TEST.search(line), line


# ---- validators --------------------------------------------------------------


def test_probability_matrix_names_source_and_row():
    good = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert check_probability_matrix(good).dtype == np.float64
    with pytest.raises(ModelError, match=r"model 'm' output contains NaN or infinite values \(first in row 1\)"):
        check_probability_matrix([[0.5, 0.5], [np.nan, 1]], what="model 'm' output", error=ModelError)
    with pytest.raises(ValueError, match=r"row 1 sum to 1.400000"):
        check_probability_matrix([[0.5, 0.5], [0.7, 0.7]])
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(3, 2\)"):
        check_probability_matrix(good, n=3, n_classes=2)
    with pytest.raises(ValueError, match="negative values"):
        check_probability_matrix([[1.5, -0.5]])


def test_probabilities_with_labels():
    y, p = check_probabilities([0, 1.0], [[0.2, 0.8], [0.5, 0.5]])
    assert y.dtype == np.int64 and p.shape == (2, 2)
    with pytest.raises(ValueError, match="integer class indices"):
        check_probabilities([0.5, 1], [[0.2, 0.8], [0.5, 0.5]])


def test_shape_and_option_checks():
    with pytest.raises(ValueError, match=r"got a \(2,\) and b \(3,\)"):
        check_same_shape([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        check_same_shape([], [])
    with pytest.raises(ValueError, match="n_bins must be >= 1, got 0"):
        check_at_least("n_bins", 0, 1)
    with pytest.raises(ValueError, match=r"unknown explainer 'gradcam'; expected one of \['lime'\]"):
        check_option("explainer", "gradcam", ("lime",))
    check_option("explainer", ["lime"], ("lime",))


# ---- fail before the work ----------------------------------------------------


def test_output_dir_check_leaves_nothing_behind(tmp_path):
    target = tmp_path / "a" / "b"
    check_output_dir(target, create=False)
    assert not (tmp_path / "a").exists()
    assert check_output_dir(target).is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrustEqError, match="cannot write there"):
        check_output_dir(tmp_path / "file" / "out")


@pytest.mark.parametrize("out", ["/proc/trusteq-out", "FILE/out"])
def test_compare_refuses_an_unwritable_out_before_any_work(out, tmp_path, capsys, monkeypatch):
    import trusteq.comparison

    (tmp_path / "file").write_text("x")
    out = out.replace("FILE", str(tmp_path / "file"))
    monkeypatch.setattr(trusteq.comparison, "compare", lambda *a, **k: pytest.fail("compare ran"))
    started = time.time()
    code = main(["compare", "--reference", "r", "--candidate", "c", "--data", "d.tsv", "--task", "nli",
                 "--no-progress", "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"trusteq: error: output folder {out}: cannot write")
    assert time.time() - started < 10


def test_report_figures_leave_matplotlib_global_state_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from trusteq.display import AlignmentDisplay, ReliabilityDisplay

    backend = matplotlib.get_backend()
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=200)
    y = rng.integers(0, 3, size=200)
    a = ReliabilityDisplay.from_predictions(y, p, n_bins=5, name="ref", ax=ax)
    ReliabilityDisplay.from_predictions(y, p[:, [1, 0, 2]], n_bins=5, name="cand", ax=ax)
    assert a.ax_ is ax and a.figure_ is fig and len(a.bins) <= 5
    diagonals = [line for line in ax.get_lines() if line.get_label().startswith("_perfectly")]
    assert len(diagonals) == 1
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("ref (ECE ")
    d = AlignmentDisplay({"cand": np.array([0.5, np.nan, 1.0]), "noise floor\n(ref)": np.array([0.9, 1.0, 1.0])},
                         metric_label="top-10 Jaccard").plot(ax=fig.subplots(1, 1))
    assert d.ax_.get_ylabel() == "top-10 Jaccard"
    assert matplotlib.get_backend() == backend and plt.get_fignums() == []


def _imports(path: Path, package: Path) -> set[str]:
    """Modules of trusteq that ``path`` imports anywhere in it (inside functions too), as dotted names."""
    import ast

    module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
    parent = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = parent
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            for alias in node.names:  # "from . import cache" imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (package.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m == "trusteq" or m.startswith("trusteq.")}


def test_no_module_imports_one_that_imports_it_back():
    """No import cycle among trusteq's modules, imports inside functions included (a package's __init__, which
    re-exports its modules, is left out)."""
    package = Path(trusteq.__file__).parent
    graph = {}
    for path in package.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        graph[name] = {m for m in _imports(path, package) if m in graph or (package.parent / m.replace(".", "/"))
                       .with_suffix(".py").exists()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, " -> ".join([*stack, node, nxt])
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    assert {"trusteq.settings", "trusteq.protocols", "trusteq.results", "trusteq.executors"} <= set(graph)
    for node in sorted(graph):
        if node not in state:
            visit(node, [])
