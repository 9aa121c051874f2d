"""Time to verdict: a fixed explained sample against sequential stopping, on the same comparison.

Reads pairs of report.json files, each a fixed-n comparison (every model explains every sampled example; a
report made before sequential stopping, or one made with ``--explain-all``) and the same comparison made with
sequential stopping, and prints per candidate:

* explained examples and model evaluations of its explanations (fixed-n: examples x the reference run's mean
  evaluations per explanation, recorded in ``settings.explain_exact``, x 2 seeded runs; sequential:
  ``comparisons.<candidate>.explain_evaluations``, as recorded) and why its explanations stopped;
* each dimension's decision in both, and whether a decided dimension reversed (equivalent <-> not equivalent);

then per comparison the explanation stage's wall time (``timings_s.explain``) and, over all candidates and the
reference, the ratio of model evaluations (fixed / sequential).

    python benchmarks/time_to_verdict.py FIXED.json SEQUENTIAL.json [FIXED.json SEQUENTIAL.json ...]

Reads reports only: run the comparisons first (``trusteq study ...``; for the fixed-n side of a committed study,
``git show REV:studies/.../report.json > fixed.json``). Wall times are the machine's that wrote each report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REVERSED = {("equivalent", "not equivalent"), ("not equivalent", "equivalent")}
SHORT = {"equivalent": "eq", "not equivalent": "not eq", "inconclusive": "inc"}


def per_example(report: dict) -> float:
    """Mean model evaluations per explained example of one model, all explainers, two seeded runs."""
    exact = report["settings"].get("explain_exact", {})
    return 2 * sum(r.get("evaluations_mean", 0.0) for r in exact.values())


def candidate_evaluations(report: dict, name: str) -> tuple[int, float]:
    """(explained examples, model evaluations) of one candidate."""
    c = report["comparisons"][name]
    if "explain_evaluations" in c:
        return c["explained_examples"], float(c["explain_evaluations"])
    n = report["settings"]["explained_examples"]
    return n, n * per_example(report)


def decisions(report: dict, name: str) -> dict[str, str]:
    return {d: x["decision"] for d, x in report["comparisons"][name]["verdict"]["dimensions"].items()}


def compare(fixed: dict, sequential: dict, label: str) -> tuple[list[str], float, float, int]:
    """Table lines of one comparison, its model evaluations (fixed, sequential) and reversed decisions."""
    lines, reversed_ = [], 0
    total_fixed = fixed["settings"]["explained_examples"] * per_example(fixed)  # the reference
    total_seq = sequential["settings"]["explained_examples"] * per_example(sequential)
    for name in sequential["candidates"]:
        (n_f, e_f), (n_s, e_s) = candidate_evaluations(fixed, name), candidate_evaluations(sequential, name)
        total_fixed, total_seq = total_fixed + e_f, total_seq + e_s
        old, new = decisions(fixed, name), decisions(sequential, name)
        flips = [d for d in new if (old.get(d), new[d]) in REVERSED]
        reversed_ += len(flips)
        side = lambda v: " ".join(f"{d.replace('explanations.', '')}:{SHORT[x]}" for d, x in v.items())  # noqa
        lines.append(f"| {label} | {name} | {n_f} | {e_f:,.0f} | {n_s} | {e_s:,.0f} | "
                     f"{sequential['comparisons'][name].get('explain_stop', '')} | {side(old)} | {side(new)} | "
                     f"{', '.join(flips) or 'none'} |")
    wall = (f"| {label} | (explain stage, wall) | | {fixed['timings_s'].get('explain', 0) / 60:.1f} min | | "
            f"{sequential['timings_s'].get('explain', 0) / 60:.1f} min | | | | |")
    return lines + [wall], total_fixed, total_seq, reversed_


def main(paths: list[str]) -> int:
    if len(paths) < 2 or len(paths) % 2:
        print(__doc__.strip().splitlines()[-5], file=sys.stderr)
        return 2
    print("| comparison | candidate | fixed: examples | fixed: evaluations | sequential: examples | "
          "sequential: evaluations | stop | fixed: decisions | sequential: decisions | reversed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    all_fixed = all_seq = 0.0
    reversed_ = 0
    for fixed_path, seq_path in zip(paths[::2], paths[1::2]):
        fixed, seq = (json.loads(Path(p).read_text()) for p in (fixed_path, seq_path))
        label = f"{seq['task']} {Path(seq_path).parent.name}"
        lines, f, s, r = compare(fixed, seq, label)
        print("\n".join(lines))
        all_fixed, all_seq, reversed_ = all_fixed + f, all_seq + s, reversed_ + r
    ratio = all_fixed / all_seq if all_seq else float("inf")
    print(f"\nmodel evaluations of explanations, reference and candidates: fixed {all_fixed:,.0f}, sequential "
          f"{all_seq:,.0f} ({ratio:,.1f}x less); decided dimensions reversed: {reversed_}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
