"""The bench report: mean and 95% interval over seeds, each method against full data at equal
data and at equal compute, and the five plots (quality vs compute, vs pruning rate, vs K, kept
loss distributions, FLOPs vs full)."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import defaultdict

from .report import read_selection_log

# Two-sided 95% Student-t quantiles by degrees of freedom (a table instead of scipy for one
# number; beyond 30 the normal quantile is close enough).
T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (0 for a single value)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    if len(vals) == 1:
        return vals[0], 0.0
    return statistics.mean(vals), t95(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))


def t95(df: float) -> float:
    """Two-sided 95% t quantile, rounded down to the table's nearest degrees of freedom."""
    return 1.96 if df > 30 else T95[max(k for k in T95 if k <= max(df, 1))]


def diff_ci(a: list[float], b: list[float]) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of its 95% Welch interval (nan with < 2 seeds).

    >>> d, h = diff_ci([1.0, 1.2, 1.1], [1.0, 1.0, 1.0])
    >>> round(d, 3), round(h, 3)
    (0.1, 0.248)
    """
    if not a or not b:
        return float("nan"), float("nan")
    d = statistics.mean(a) - statistics.mean(b)
    if len(a) < 2 or len(b) < 2:
        return d, float("nan")
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return d, 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return d, t95(df) * math.sqrt(va + vb)


def relative(diff: tuple[float, float], reference: float) -> str:
    """A difference as a percentage of ``reference``; '*' marks an interval excluding zero."""
    d, h = diff
    if math.isnan(d):
        return "-"
    if math.isnan(h):
        return f"{100 * d / reference:+.1f}%"
    star = "*" if abs(d) > h else ""
    return f"{100 * d / reference:+.1f}% ± {100 * h / reference:.1f}{star}"


def delta(row: dict, other: dict, reference: float) -> str:
    """``row``'s eval loss minus ``other``'s, as :func:`relative` formats it."""
    return relative(diff_ci(row["eval_loss_values"], other["eval_loss_values"]), reference)


def md_row(cells: list[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def md_head(cells: list[str]) -> list[str]:
    """A markdown table header and its rule."""
    return [md_row(cells), "|" + "---|" * len(cells)]


def label(cell: dict) -> str:
    m = cell.get("method", "slap")
    parts = [m]
    if m in ("slap", "ccs") and "num_strata" in cell:
        parts.append(f"K={cell['num_strata']}")
    if cell.get("scoring") == "reuse":
        parts.append("reuse")
    return " ".join(parts)


def quality_keys(rows: list[dict]) -> list[str]:
    keys = ["eval_loss"]
    extra = sorted({k for r in rows for k in r if "/" in k and not k.endswith("/n")})
    return keys + extra


def aggregate(rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for r in rows:
        cell = {k: v for k, v in r["cell"].items() if k != "seed"}
        groups[json.dumps(cell, sort_keys=True)].append(r)
    out = []
    for key, rs in groups.items():
        cell = json.loads(key)
        config = rs[0].get("config", cell)  # base options + cell: the K actually used
        strata = config.get("num_strata", 5) if cell.get("method") in ("slap", "ccs") else None
        row = {
            "label": label(cell),
            "keep": cell.get("keep_ratio", 1.0),
            "K": strata,
            "scoring": config.get("scoring", "fresh"),
            "seeds": len(rs),
            "cell": cell,
        }
        for k in quality_keys(rows) + [
            "flops_total",
            "flops_training",
            "flops_scoring",
            "wall_clock_s",
            "samples_trained",
            "tokens_trained",
        ]:
            row[k] = mean_ci([r.get(k) for r in rs])
        row["eval_loss_values"] = [r["eval_loss"] for r in rs if r.get("eval_loss") is not None]
        out.append(row)
    return sorted(out, key=lambda r: (-r["keep"], r["label"]))


def fmt(mc) -> str:
    m, h = mc
    if math.isnan(m):
        return "-"
    digits = ".3g" if abs(m) >= 1e4 else ".4f"
    return f"{m:{digits}} ± {h:{digits}}" if h else f"{m:{digits}}"


def equal_compute_baseline(row: dict, agg: list[dict]) -> dict | None:
    """The cheap baseline (full data or random pruning) whose FLOPs are closest to ``row``'s:
    what the same compute buys without a selector."""
    cheap = [a for a in agg if a["label"] in ("full", "random")]
    if row in cheap or not cheap or math.isnan(row["flops_total"][0]):
        return None  # a baseline is its own equal-compute point
    return min(cheap, key=lambda a: abs(math.log(a["flops_total"][0] / row["flops_total"][0])))


def comparisons(row: dict, agg: list[dict], full: dict | None) -> list[str]:
    """Eval-loss difference vs full data (equal data is the keep column) and vs the
    equal-compute baseline, as % of full data's loss (negative = better)."""
    if full is None:
        return ["-", "-"]
    ref = full["eval_loss"][0]
    vs_full = "-" if row is full else delta(row, full, ref)
    base = equal_compute_baseline(row, agg)
    if base is None:
        return [vs_full, "-"]
    return [vs_full, f"{base['label']} {base['keep']:g}: {delta(row, base, ref)}"]


def write_report(rows: list[dict], output_dir: str, grid_path: str) -> str:
    agg = aggregate(rows)
    full = next((a for a in agg if a["label"] == "full"), None)
    qkeys = quality_keys(rows)
    head = (
        ["method", "keep", "seeds"]
        + qkeys
        + ["Δ loss vs full", "Δ loss vs equal-compute baseline"]
        + ["FLOPs (scoring incl.)", "FLOPs / full", "wall s", "wall / full"]
    )
    lines = md_head(head)
    for a in agg:
        ratio = f"{a['flops_total'][0] / full['flops_total'][0]:.3f}" if full else "-"
        wall = f"{a['wall_clock_s'][0] / full['wall_clock_s'][0]:.3f}" if full else "-"
        lines.append(
            md_row(
                [a["label"], f"{a['keep']:g}", str(a["seeds"])]
                + [fmt(a[k]) for k in qkeys]
                + comparisons(a, agg, full)
                + [fmt(a["flops_total"]), ratio, fmt(a["wall_clock_s"]), wall]
            )
        )
    plots = make_plots(rows, agg, output_dir)
    text = "\n".join(
        [
            "# slaptune bench report",
            "",
            f"Grid: `{grid_path}`; {len(rows)} runs. Mean ± 95% t-interval over seeds. "
            "Δ loss: eval-loss difference as % of full data's (negative = better) with a "
            "95% Welch interval; * = the interval excludes 0. Equal data: rows with the same "
            "keep ratio. Equal compute: the baseline without a selector (full data or random "
            "pruning) whose FLOPs, scoring included, are closest; and the quality-vs-compute "
            "plot.",
            "",
            *lines,
            "",
            *[f"![{os.path.basename(p)}](plots/{os.path.basename(p)})" for p in plots],
            "",
        ]
    )
    path = os.path.join(output_dir, "report.md")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path


def make_plots(rows, agg, output_dir) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder = os.path.join(output_dir, "plots")
    os.makedirs(folder, exist_ok=True)
    paths = []

    def save(fig, name):
        p = os.path.join(folder, name)
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    by_label = defaultdict(list)
    for a in agg:
        by_label[a["label"]].append(a)
    # One colour and marker per method: the default 10-colour cycle repeats past ten labels,
    # and a grid easily has more (8 methods + reuse + K variants).
    cmap = plt.get_cmap("tab20")
    style = {
        lab: {"color": cmap(i % 20), "marker": "os^vD<>ph*"[i % 10]}
        for i, lab in enumerate(sorted(by_label))
    }
    # 1. quality vs compute
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lab, rs in sorted(by_label.items()):
        ax.errorbar(
            [r["flops_total"][0] for r in rs],
            [r["eval_loss"][0] for r in rs],
            yerr=[r["eval_loss"][1] for r in rs],
            ls="none",
            label=lab,
            capsize=3,
            **style[lab],
        )
    ax.set(
        xlabel="total FLOPs (scoring included)",
        ylabel="eval loss",
        xscale="log",
        title="quality vs compute",
    )
    ax.legend(fontsize=7)
    save(fig, "quality_vs_compute.png")
    # 2. quality vs pruning rate (paper Fig. 7)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lab, rs in sorted(by_label.items()):
        rs = sorted(rs, key=lambda r: r["keep"])
        if lab == "full":
            ax.axhline(rs[0]["eval_loss"][0], color="k", ls="--", label="full data")
            continue
        ax.errorbar(
            [1 - r["keep"] for r in rs],
            [r["eval_loss"][0] for r in rs],
            yerr=[r["eval_loss"][1] for r in rs],
            label=lab,
            capsize=3,
            **style[lab],
        )
    ax.set(
        xlabel="pruning rate (1 - keep ratio)", ylabel="eval loss", title="quality vs pruning rate"
    )
    ax.legend(fontsize=7)
    save(fig, "quality_vs_pruning.png")
    # 3. quality vs K (paper Fig. 4)
    slap = [a for a in agg if a["cell"].get("method") == "slap" and a["K"] is not None]
    if len({a["K"] for a in slap}) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for keep in sorted({a["keep"] for a in slap}):
            rs = sorted(
                [a for a in slap if a["keep"] == keep and a["scoring"] == "fresh"],
                key=lambda r: r["K"],
            )
            ax.errorbar(
                [r["K"] for r in rs],
                [r["eval_loss"][0] for r in rs],
                yerr=[r["eval_loss"][1] for r in rs],
                marker="o",
                capsize=3,
                label=f"keep {keep:g}",
            )
        ax.set(xlabel="number of strata K", ylabel="eval loss", title="SLAP: effect of K")
        ax.legend()
        save(fig, "quality_vs_strata.png")
    # 4. loss distribution of kept examples (paper Fig. 3)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn_all = False
    fresh = [
        r
        for r in rows
        if r["cell"].get("scoring", "fresh") == "fresh" and "num_strata" not in r["cell"]
    ]
    # The smallest keep ratio shows the methods' preferences most clearly.
    keep = min((r["cell"].get("keep_ratio", 1.0) for r in fresh), default=1.0)
    for method in ("hard", "ccs", "slap"):
        row = next(
            (
                r
                for r in fresh
                if r["cell"].get("method") == method and r["cell"].get("keep_ratio") == keep
            ),
            None,
        )
        if row is None:
            continue
        recs = read_selection_log(
            os.path.join(output_dir, "cells", row["cell_id"], "selection.jsonl")
        )
        seen, kept = [], []
        for r in recs:
            losses = dict(zip(r.get("seen_ids", []), r.get("seen_losses", [])))
            seen += [v for v in losses.values() if v is not None]
            kept += [losses[i] for i in r["kept_ids"] if losses.get(i) is not None]
        if not drawn_all and seen:
            ax.hist(seen, bins=50, density=True, alpha=0.3, color="grey", label="all candidates")
            drawn_all = True
        if kept:
            ax.hist(kept, bins=50, density=True, histtype="step", lw=1.5, label=f"kept: {method}")
    ax.set(
        xlabel="per-example loss when scored",
        ylabel="density",
        title=f"which losses each method keeps (keep {keep:g}, one seed)",
    )
    ax.legend(fontsize=8)
    save(fig, "kept_loss_distribution.png")
    # 5. FLOPs vs full (paper Fig. 10): training and scoring stacked, relative to full data
    full = next((a for a in agg if a["label"] == "full"), None)
    unit = full["flops_total"][0] if full else 1.0
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [f"{a['label']} {a['keep']:g}" for a in agg]
    train = [a["flops_training"][0] / unit for a in agg]
    ax.bar(names, train, color="C0", label="training")
    ax.bar(
        names,
        [a["flops_scoring"][0] / unit for a in agg],
        bottom=train,
        color="C1",
        label="scoring (selection)",
    )
    if full:
        ax.axhline(1.0, color="k", ls="--", lw=1, label="full data")
    ax.set(ylabel="FLOPs / full data" if full else "FLOPs", title="compute per method")
    ax.tick_params(axis="x", rotation=70, labelsize=7)
    ax.legend(fontsize=7)
    save(fig, "flops.png")
    return paths
