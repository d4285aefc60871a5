"""Cross-task tables for the paper's claims, from a suite's ``results.jsonl`` files.

    python benchmarks/suite_verdicts.py runs/suite-full > runs/suite-full/verdicts.md

Every number is computed here from the per-run results (nothing typed in by hand): per task a
compact table (quality, and samples / tokens / FLOPs / wall-clock against full data), then one
table per claim: SLAP vs full data at each keep ratio, SLAP vs every baseline at the same keep
ratio, the effect of K, and the compute spent. Differences are in % of full data's eval loss
(negative = better) with a 95% t-interval of the differences paired by seed (Welch where fewer
than 2 seeds pair); ``*`` marks an interval excluding 0. The equal-compute table reads both
runs' eval curves at the FLOPs where the cheaper one ended.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from slaptune.pipeline.bench import read_results
from slaptune.pipeline.bench_report import (
    aggregate,
    delta,
    diff,
    equal_flops,
    fmt,
    md_head,
    md_row,
    paired_ci,
    relative,
)
from slaptune.pipeline.report import read_selection_log

FAMILIES = {
    "rolebench": "dialogue",
    "topical_chat": "dialogue (multi-turn)",
    "tatoeba": "translation",
    "nq_open": "QA",
    "gsm8k": "QA (math)",
    "character_llm": "role-play (multi-turn)",
}
POOLS = {
    "filler25": "25% already-known filler",
    "filler50": "50% already-known filler",
    "dup50": "50% near-duplicates",
    "noise10": "10% swapped answers",
    "noise20": "20% swapped answers",
}


def family(task: str) -> str:
    """A task's family; a redundancy pool's make-up (``rolebench_filler50``)."""
    for kind, what in POOLS.items():
        if task.endswith("_" + kind):
            base = task[: -len(kind) - 1]
            return f"{FAMILIES.get(base, base)} pool: {what}, eval on clean {base}"
    return FAMILIES.get(task, task)


METRICS = ("dialogue/rougeL", "translation/chrf", "qa/token_f1", "math/final_answer_accuracy")
BASELINES = ("random", "hard", "ccs", "infobatch", "kcenter", "selective_backprop")


def primary_metric(rows: list[dict]) -> str | None:
    return next((m for m in METRICS if any(m in r for r in rows)), None)


def find(agg: list[dict], label: str, keep: float) -> dict | None:
    return next((a for a in agg if a["label"] == label and a["keep"] == keep), None)


def ratio(a: dict, full: dict, key: str) -> str:
    return f"{a[key][0] / full[key][0]:.3f}"


def task_table(task: str, rows: list[dict]) -> list[str]:
    agg = aggregate(rows)
    full = find(agg, "full", 1.0)
    metric = primary_metric(rows)
    head = ["method", "keep", "seeds", "eval loss", metric or "metric", "Δ loss vs full"]
    head += ["samples / full", "tokens / full", "FLOPs / full", "wall / full"]
    out = [f"#### {task} ({family(task)})", "", *md_head(head)]
    for a in agg:
        vs_full = "-" if a is full else delta(a, full, full["eval_loss"][0])
        cells = [a["label"], f"{a['keep']:g}", str(a["seeds"]), fmt(a["eval_loss"])]
        cells += [fmt(a[metric]) if metric else "-", vs_full]
        cells += [ratio(a, full, k) for k in ("samples_trained", "tokens_trained")]
        cells += [ratio(a, full, k) for k in ("flops_total", "wall_clock_s")]
        out.append(md_row(cells))
    return out + [""]


def claim_vs_full(
    tasks: dict[str, list[dict]], keeps: list[float], labels=("slap", "slap reuse")
) -> list[str]:
    head = ["task"] + [f"{lab} {k:g}" for lab in labels for k in keeps]
    out = md_head(head)
    for task, rows in tasks.items():
        agg = aggregate(rows)
        full = find(agg, "full", 1.0)
        cells = [task]
        for lab in labels:
            for k in keeps:
                a = find(agg, lab, k)
                cells.append("-" if a is None else delta(a, full, full["eval_loss"][0]))
        out.append(md_row(cells))
    return out + [""]


def claim_vs_baselines(tasks: dict[str, list[dict]], keeps: list[float]) -> list[str]:
    head = ["task", "keep"] + [f"slap − {b}" for b in BASELINES]
    out = md_head(head)
    tally = {b: [0, 0, 0] for b in BASELINES}  # slap better / no difference / slap worse
    for task, rows in tasks.items():
        agg = aggregate(rows)
        ref = find(agg, "full", 1.0)["eval_loss"][0]
        for k in keeps:
            slap = find(agg, "slap", k)
            if slap is None:
                continue
            cells = [task, f"{k:g}"]
            for b in BASELINES:
                base = find(agg, b, k)
                if base is None:
                    cells.append("-")
                    continue
                d, h = diff(slap, base)
                cells.append(delta(slap, base, ref))
                tally[b][0 if d < -h else 2 if d > h else 1] += 1
            out.append(md_row(cells))
    out += ["", *md_head(["baseline", "SLAP better", "no difference", "SLAP worse"])]
    out += [md_row([b, *map(str, t)]) for b, t in tally.items()]
    return out + [""]


def claim_same_mode(tasks: dict[str, list[dict]], keeps: list[float]) -> list[str]:
    """SLAP against each baseline scored the same way (fresh with fresh, reuse with reuse): a
    reuse run keeps every row of its first epoch, so it must not be compared with a fresh one."""
    pairs = [(f"slap{m}", f"{b}{m}") for m in ("", " reuse") for b in BASELINES if b != "random"]
    body = []
    for task, rows in tasks.items():
        agg = aggregate(rows)
        ref = find(agg, "full", 1.0)["eval_loss"][0]
        for k in keeps:
            found = [(find(agg, x, k), find(agg, y, k)) for x, y in pairs]
            body.append([task, f"{k:g}", *["-" if None in f else delta(*f, ref) for f in found]])
    cols = [i for i in range(len(pairs)) if any(r[i + 2] != "-" for r in body)]
    out = md_head(["task", "keep", *[f"{pairs[i][0]} − {pairs[i][1]}" for i in cols]])
    for r in body:
        if any(r[i + 2] != "-" for i in cols):
            out.append(md_row(r[:2] + [r[i + 2] for i in cols]))
    return out + [""]


def claim_matched_random(tasks: dict[str, list[dict]]) -> list[str]:
    """Every pruned method against random pruning with the nearest FLOPs (scoring included;
    full data counts as random at keep 1), at the end of both runs (each with its whole
    learning-rate schedule), paired by seed."""
    head = ["task", "method", "keep", "FLOPs / full", "partner: keep (FLOPs / full)"]
    out = md_head(head + ["Δ vs partner (end)"])
    for task, rows in tasks.items():
        agg = aggregate(rows)
        full = find(agg, "full", 1.0)
        rands = [a for a in agg if a["label"] == "random"] + [full]
        if full is None:
            continue
        ref = full["eval_loss"][0]
        for a in agg:
            if a["label"] in ("full", "random") or a["label"].startswith("slap K="):
                continue
            f = a["flops_total"][0] / full["flops_total"][0]
            r = min(rands, key=lambda x: abs(x["flops_total"][0] / full["flops_total"][0] - f))
            partner = f"{r['label']} {r['keep']:g} ({ratio(r, full, 'flops_total')})"
            out.append(
                md_row([task, a["label"], f"{a['keep']:g}", f"{f:.3f}", partner, delta(a, r, ref)])
            )
    return out + [""]


def claim_equal_flops(tasks: dict[str, list[dict]]) -> list[str]:
    """Every pruned method vs full data and vs random (same keep) at equal FLOPs, from the
    eval curves, paired by seed; and on the hardest third of eval examples vs full at the end."""
    head = ["task", "method", "keep", "seeds", "vs full @ equal FLOPs", "vs random @ equal FLOPs"]
    head += ["hard third vs full (end)", "FLOPs / full"]
    out = md_head(head)
    for task, rows in tasks.items():
        agg = aggregate(rows)
        full = find(agg, "full", 1.0)
        if full is None:
            continue
        ref = full["eval_loss"][0]
        for a in agg:
            if a is full or a["label"].startswith("slap K="):
                continue
            rand = find(agg, "random", a["keep"])
            vs_rand = "-" if rand is None or rand is a else relative(equal_flops(a, rand), ref)
            hard = {
                s: (r.get("eval_loss_terciles") or {}).get("hard") for s, r in a["runs"].items()
            }
            base = {
                s: (r.get("eval_loss_terciles") or {}).get("hard") for s, r in full["runs"].items()
            }
            d, h, n = paired_ci(hard, base)
            cells = [task, a["label"], f"{a['keep']:g}", str(a["seeds"])]
            cells += [relative(equal_flops(a, full), ref), vs_rand]
            cells += [relative((d, h), ref) if n else "-", ratio(a, full, "flops_total")]
            out.append(md_row(cells))
    return out + [""]


def pool_roles(task_dir: str) -> list[str] | None:
    """The ``pool`` role of every training row of a redundancy-pool task (row i = record i of
    the data file, up to max_train_examples), or None for a clean task."""
    import yaml

    grid = os.path.join(task_dir, "grid.yaml")
    if not os.path.exists(grid):
        return None
    with open(grid) as f:
        base = yaml.safe_load(f).get("base", {})
    roles = []
    for path in base.get("data", []):
        with open(path) as f:
            roles += [json.loads(x).get("pool") for x in f if x.strip()]
    n = base.get("max_train_examples") or len(roles)
    return roles[:n] if roles and all(roles[:n]) else None


def role_shares(records, roles: list[str], role: str) -> tuple[float, float] | None:
    """``role``'s share of the seen rows and of the kept rows over a run's selection log."""
    s = k = rs = rk = 0
    for rec in records:
        if rec.get("kept_ids") is None:
            continue
        s, k = s + len(rec["seen_ids"]), k + len(rec["kept_ids"])
        rs += sum(roles[i] == role for i in rec["seen_ids"])
        rk += sum(roles[i] == role for i in rec["kept_ids"])
    return (rs / s, rk / k) if s and k else None


def kept_roles(suite_dir: str, tasks: dict[str, list[dict]]) -> list[str]:
    """Per pool task and pruned cell: each role's share of the kept rows vs of the seen rows
    (selection.jsonl), mean over seeds. A pruner that sees the redundancy keeps less filler,
    fewer duplicates and fewer swapped answers than the pool holds; random keeps the pool's mix."""
    out = []
    for task, rows in tasks.items():
        roles = pool_roles(os.path.join(suite_dir, task))
        if roles is None:
            continue
        names = sorted(set(roles) - {"clean"})
        if not out:
            out += md_head(["task", "method", "keep", "role", "share of seen", "share of kept"])
        for a in aggregate(rows):
            if a["label"] == "full":
                continue
            for role in names:
                seen, kept = [], []
                for run in a["runs"].values():
                    if run.get("records_skipped"):
                        continue  # row ids would not line up with the file's records
                    log = os.path.join(suite_dir, task, "cells", run["cell_id"], "selection.jsonl")
                    shares = role_shares(read_selection_log(log), roles, role)
                    if shares:
                        seen.append(shares[0])
                        kept.append(shares[1])
                if seen:
                    cells = [task, a["label"], f"{a['keep']:g}", role]
                    cells += [f"{statistics.mean(seen):.3f}", f"{statistics.mean(kept):.3f}"]
                    out.append(md_row(cells))
    return out + [""] if out else []


def claim_strata(tasks: dict[str, list[dict]]) -> list[str]:
    """Eval loss by K wherever a keep ratio has several SLAP K values (the header takes the
    first task's K set; suites run the same K sweep on every task)."""
    out, header_done = [], False
    for task, rows in tasks.items():
        agg = aggregate(rows)
        ref = find(agg, "full", 1.0)["eval_loss"][0]
        slap = [a for a in agg if a["label"].startswith("slap") and "reuse" not in a["label"]]
        by_k = {}
        for a in slap:
            if len([b for b in slap if b["keep"] == a["keep"]]) > 1:
                by_k.setdefault(a["keep"], {})[a["K"]] = a
        for keep, ks in sorted(by_k.items()):
            if not header_done:
                head = ["task", "keep"] + [f"K={k}" for k in sorted(ks)] + ["K=max − K=1"]
                out += md_head(head)
                header_done = True
            lo, hi = ks[min(ks)], ks[max(ks)]
            d = delta(hi, lo, ref)
            losses = [fmt(ks[k]["eval_loss"]) for k in sorted(ks)]
            out.append(md_row([task, f"{keep:g}", *losses, d]))
    return out + [""]


def claim_compute(tasks: dict[str, list[dict]]) -> list[str]:
    """Median over tasks of each method's samples / tokens / FLOPs / wall-clock vs full."""
    table: dict[tuple[str, float], dict[str, list[float]]] = {}
    for rows in tasks.values():
        agg = aggregate(rows)
        full = find(agg, "full", 1.0)
        for a in agg:
            if a["label"].startswith("slap K="):
                continue
            entry = table.setdefault((a["label"], a["keep"]), {})
            for k in ("samples_trained", "tokens_trained", "flops_total", "wall_clock_s"):
                entry.setdefault(k, []).append(a[k][0] / full[k][0])
    head = ["method", "keep", "samples", "tokens", "FLOPs (scoring incl.)", "wall-clock"]
    out = md_head(head)
    for (lab, keep), entry in sorted(table.items(), key=lambda x: (-x[0][1], x[0][0])):
        vals = [f"{statistics.median(entry[k]):.3f}" for k in entry]
        out.append(md_row([lab, f"{keep:g}", *vals]))
    return out + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("suite_dir", help="a run_suite.py output folder (one sub-folder per task)")
    a = p.parse_args()
    tasks = {}
    for task in sorted(
        os.listdir(a.suite_dir), key=lambda t: list(FAMILIES).index(t) if t in FAMILIES else 99
    ):
        path = os.path.join(a.suite_dir, task, "results.jsonl")
        if os.path.exists(path):
            tasks[task] = read_results(path)
    if not tasks:
        sys.exit(f"{a.suite_dir}: no <task>/results.jsonl found; run benchmarks/run_suite.py first")
    keeps = sorted(
        {r["cell"].get("keep_ratio", 1.0) for rs in tasks.values() for r in rs} - {1.0},
        reverse=True,
    )
    print(f"Runs: {sum(len(r) for r in tasks.values())} over {len(tasks)} tasks.\n")
    for task, rows in tasks.items():
        print("\n".join(task_table(task, rows)))
    print("#### Claim 1: SLAP vs full data (Δ eval loss, % of full)\n")
    print("\n".join(claim_vs_full(tasks, keeps)))
    print("#### Reuse scoring: SLAP vs the same schedule with selective backprop (Δ vs full)\n")
    print("\n".join(claim_vs_full(tasks, [0.7], ("slap reuse", "selective_backprop reuse"))))
    print("#### Claim 2: SLAP vs each baseline at the same keep ratio (negative = SLAP better)\n")
    print("\n".join(claim_vs_baselines(tasks, keeps)))
    print("#### SLAP vs each baseline in the same scoring mode (negative = SLAP better)\n")
    print("\n".join(claim_same_mode(tasks, keeps)))
    print("#### Against random or full data at the nearest compute (ends; negative = better)\n")
    print("\n".join(claim_matched_random(tasks)))
    print("#### At equal compute (eval curves; paired by seed, % of full data's loss)\n")
    print("\n".join(claim_equal_flops(tasks)))
    roles = kept_roles(a.suite_dir, tasks)
    if roles:
        print("#### Redundancy pools: what each method kept (share of rows by role)\n")
        print("\n".join(roles))
    print("#### Claim 3: effect of the number of strata K (eval loss)\n")
    print("\n".join(claim_strata(tasks)))
    print("#### Compute vs full data (median over tasks)\n")
    print("\n".join(claim_compute(tasks)))


if __name__ == "__main__":
    main()
