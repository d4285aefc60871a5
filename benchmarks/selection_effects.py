"""Issue 10's verdicts: each selection change's effect on eval loss, paired by seed.

Reads ``<suite dir>/<task>/results.jsonl`` written by
``python benchmarks/run_suite.py --suite benchmarks/suites/selection.yaml`` and prints markdown:
per task, every variant's eval loss relative to the default SLAP and to random pruning at the
same keep ratio (paired differences over seeds, mean and 95% t-interval), and FLOPs relative to
full data (training + scoring).

    python benchmarks/selection_effects.py runs/suite-selection
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict

from scipy import stats

from slaptune.pipeline.bench import read_results

DEFAULTS = {"tilt": "softmax", "weighting": "none", "pool_windows": 1, "feature_norm": "unit"}


def variant(cell: dict) -> str:
    m = cell.get("method", "slap")
    if m == "random":
        return f"random {cell.get('keep_ratio', 1.0)}"
    if m != "slap":
        return m
    if cell.get("feature_norm") == "none":
        return "slap, old features (raw size, no floor, 64x64)"
    keys = ("tilt", "weighting", "pool_windows", "scoring", "reuse_unscored")
    changes = [f"{k}={cell[k]}" for k in keys if k in cell]
    return "slap, " + ", ".join(changes) if changes else "slap (defaults)"


def paired(a: dict, b: dict) -> tuple[float, float, int] | None:
    """Mean relative difference (%) of a over b and its 95% half-width, over shared seeds."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = [100.0 * (a[s] - b[s]) / b[s] for s in seeds]
    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    return statistics.mean(d), half, len(d)


def fmt(x) -> str:
    if x is None:
        return "n/a"
    mean, half, n = x
    return f"{mean:+.2f}% ± {half:.2f} (n={n})"


def task_table(rows: list[dict]) -> list[str]:
    loss: dict[str, dict] = defaultdict(dict)
    flops: dict[str, list] = defaultdict(list)
    for r in rows:
        v = variant(r["cell"])
        loss[v][r["cell"].get("seed", 0)] = r["eval_loss"]
        flops[v].append(r["flops_training"] + r["flops_scoring"])
    full_flops = statistics.mean(flops["full"]) if flops.get("full") else None
    out = [
        "| variant | eval loss (mean) | vs SLAP defaults | vs random 0.6 | vs random 0.93 "
        "| FLOPs vs full |",
        "|---|---|---|---|---|---|",
    ]
    for v in sorted(loss, key=lambda k: (k != "full", not k.startswith("random"), k)):
        ratio = f"{statistics.mean(flops[v]) / full_flops:.3f}" if full_flops else "n/a"
        out.append(
            f"| {v} | {statistics.mean(loss[v].values()):.4f} "
            f"| {fmt(paired(loss[v], loss.get('slap (defaults)', {})))} "
            f"| {fmt(paired(loss[v], loss.get('random 0.6', {})))} "
            f"| {fmt(paired(loss[v], loss.get('random 0.93', {})))} | {ratio} |"
        )
    return out


def kept_role_shares(task_dir: str, rows: list[dict]) -> list[str]:
    """For a redundancy pool: each variant's share of filler / swapped-answer rows among the
    kept rows against the pool's share (``selection.jsonl`` and the pool's ``pool`` tags)."""
    from suite_verdicts import pool_roles, role_shares  # the suite verdicts' own reading

    from slaptune.pipeline.report import read_selection_log

    roles = pool_roles(task_dir)
    if roles is None:
        return []
    out = ["", "| variant | role | share of seen | share of kept |", "|---|---|---|---|"]
    by_variant: dict[str, list] = defaultdict(list)
    for r in rows:
        if not r.get("records_skipped"):
            by_variant[variant(r["cell"])].append(r)
    for v, runs in sorted(by_variant.items()):
        for role in sorted(set(roles) - {"clean"}):
            shares = [
                role_shares(
                    read_selection_log(
                        os.path.join(task_dir, "cells", run["cell_id"], "selection.jsonl")
                    ),
                    roles,
                    role,
                )
                for run in runs
            ]
            seen = [x[0] for x in shares if x]
            kept = [x[1] for x in shares if x]
            if seen:
                out.append(
                    f"| {v} | {role} | {statistics.mean(seen):.3f} | {statistics.mean(kept):.3f} |"
                )
    # Runs that skipped bad records have row ids that no longer line up with the pool's tags.
    return out if len(out) > 3 else []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("suite_dir")
    a = p.parse_args()
    for task in sorted(os.listdir(a.suite_dir)):
        rows = read_results(os.path.join(a.suite_dir, task, "results.jsonl"))
        if not rows:
            continue
        print(f"\n### {task} ({len(rows)} runs)\n")
        print("\n".join(task_table(rows)))
        print("\n".join(kept_role_shares(os.path.join(a.suite_dir, task), rows)))


if __name__ == "__main__":
    main()
