"""The bench report's plots, made to be read at a glance.

Every title names the task (the bench folder's name), the method(s) and the keep ratio(s); axes
say what is measured and in which unit; full data is a dashed black reference line; each method
has its own colour and marker in every plot; error bars are 95% t-intervals over seeds; legends
sit outside the axes. Plots: eval loss vs compute through training (one per keep ratio, every
method on one axis), final quality vs compute and vs pruning rate, the effect of K, the loss
distribution of kept examples, compute per method, and eval loss by difficulty third.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections import defaultdict

from ..select.registry import get_spec
from .bench_report import mean_ci
from .report import pyplot, read_selection_log

LOSS = "eval loss (nats / supervised token)"
COMPUTE = "compute: FLOPs incl. scoring / full-data FLOPs"
MARKERS = "o^vD<>ph*PX8d"  # "s" is full data's


def _title(ax, task: str, what: str, methods, keeps) -> None:
    keep = ", ".join(f"{k:g}" for k in sorted(set(keeps), reverse=True))
    # A method's name never breaks across lines (non-breaking spaces inside it).
    names = ", ".join(m.replace(" ", "\u00a0") for m in dict.fromkeys(methods))
    lines = [f"{task}: {what} (keep {keep})", *textwrap.wrap(f"methods: {names}", 90)]
    ax.set_title("\n".join(lines), fontsize=9)


def _legend(ax) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def styles(labels) -> dict:
    """One colour and marker per label, stable across every plot of a report; full is black."""
    import matplotlib.pyplot as plt

    others = sorted(set(labels) - {"full"})
    cmap = plt.get_cmap("tab10" if len(others) <= 10 else "tab20")
    out = {"full": {"color": "black", "marker": "s"}}
    for i, lab in enumerate(others):
        out[lab] = {"color": cmap(i % cmap.N), "marker": MARKERS[i % len(MARKERS)]}
    return out


def curve_points(runs: list[dict]) -> list[tuple[float, float, float]]:
    """Seeds' eval curves averaged point by point (points align on their FLOPs target; the end
    point is its own): ``(mean fraction, mean loss, 95% half-width)`` sorted by fraction.

    >>> runs = [{"eval_curve": [{"flops_fraction": 0.0, "target": 0.0, "eval_loss": 3.0},
    ...                         {"flops_fraction": 0.51, "target": None, "eval_loss": 2.0}]},
    ...         {"eval_curve": [{"flops_fraction": 0.0, "target": 0.0, "eval_loss": 3.2},
    ...                         {"flops_fraction": 0.49, "target": None, "eval_loss": 2.2}]}]
    >>> [(round(f, 2), round(m, 2)) for f, m, _ in curve_points(runs)]
    [(0.0, 3.1), (0.5, 2.1)]
    """
    groups = defaultdict(list)
    for run in runs:
        for p in run.get("eval_curve") or []:
            groups["end" if p.get("target") is None else p["target"]].append(p)
    out = []
    for pts in groups.values():
        m, h = mean_ci([p["eval_loss"] for p in pts])
        out.append((sum(p["flops_fraction"] for p in pts) / len(pts), m, h))
    return sorted(out)


def shown_label(a: dict) -> str:
    """The legend's name: a method that scores says how (``slap fresh``, ``slap reuse``), so a
    reader does not take a bare ``slap`` for its cheaper variant."""
    method = a["cell"].get("method", "slap")
    spec = get_spec(method)
    scores = spec.uses_losses or spec.needs_features
    if scores and not spec.keeps_everything and "reuse" not in a["label"]:
        return f"{a['label']} fresh"
    return a["label"]


def make_plots(rows, agg, output_dir) -> list[str]:
    agg = [dict(a, label=shown_label(a)) for a in agg]
    try:
        plt = pyplot()
    except ImportError:
        return []
    task = os.path.basename(os.path.normpath(output_dir))
    folder = os.path.join(output_dir, "plots")
    os.makedirs(folder, exist_ok=True)
    paths = []

    def save(fig, name):
        p = os.path.join(folder, name)
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(p)

    style = styles(a["label"] for a in agg)
    full = next((a for a in agg if a["label"] == "full"), None)
    keeps = sorted({a["keep"] for a in agg if a["label"] != "full"}, reverse=True)
    methods = [a["label"] for a in agg]

    def full_line(ax, value=None):
        if full is not None:
            y = full["eval_loss"][0] if value is None else value
            ax.axhline(y, color="black", ls="--", lw=1, label="full data (end)")

    # 1. Learning curves: eval loss vs compute through training, one plot per keep ratio.
    for keep in keeps:
        group = [a for a in agg if a["keep"] == keep] + ([full] if full else [])
        if not any(r.get("eval_curve") for a in group for r in a["runs"].values()):
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for a in group:
            pts = curve_points(list(a["runs"].values()))
            ax.errorbar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                yerr=[p[2] for p in pts],
                label=f"{a['label']} ({a['seeds']} seeds)",
                capsize=2,
                ms=4,
                lw=1.2,
                ls="--" if a is full else "-",
                **style[a["label"]],
            )
        ax.axvline(1.0, color="grey", ls=":", lw=1, label="full-data budget")
        full_line(ax)
        ax.set(xlabel=COMPUTE, ylabel=LOSS)
        _title(
            ax, task, "eval loss vs compute during training", [a["label"] for a in group], [keep]
        )
        _legend(ax)
        save(fig, f"learning_curve_keep{keep:g}.png")
    # 2. Final quality vs compute.
    by_label = defaultdict(list)
    for a in agg:
        by_label[a["label"]].append(a)
    unit = full["flops_total"][0] if full else 1.0
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for lab, rs in sorted(by_label.items()):
        rs = sorted(rs, key=lambda r: r["flops_total"][0])
        ax.errorbar(
            [r["flops_total"][0] / unit for r in rs],
            [r["eval_loss"][0] for r in rs],
            yerr=[r["eval_loss"][1] for r in rs],
            label=lab,
            capsize=3,
            lw=1,
            **style[lab],
        )
    full_line(ax)
    ax.set(xlabel=COMPUTE if full else "FLOPs incl. scoring", ylabel=f"final {LOSS}")
    _title(ax, task, "final quality vs compute", methods, [a["keep"] for a in agg])
    _legend(ax)
    save(fig, "quality_vs_compute.png")
    # 3. Quality vs pruning rate (paper Fig. 7).
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    pruned = sorted(lab for lab in by_label if lab != "full")
    for i, lab in enumerate(pruned):
        rs = sorted(by_label[lab], key=lambda r: r["keep"])
        dodge = (i - (len(pruned) - 1) / 2) * 0.4  # side by side, not on top of each other
        ax.errorbar(
            [100 * (1 - r["keep"]) + dodge for r in rs],
            [r["eval_loss"][0] for r in rs],
            yerr=[r["eval_loss"][1] for r in rs],
            label=lab,
            capsize=3,
            lw=1,
            **style[lab],
        )
    full_line(ax)
    ax.set(
        xlabel="pruning rate (% of candidates dropped; methods set side by side)",
        ylabel=f"final {LOSS}",
    )
    _title(ax, task, "final quality vs pruning rate", methods, keeps or [1.0])
    _legend(ax)
    save(fig, "quality_vs_pruning.png")
    # 4. Quality vs K (paper Fig. 4).
    slap = [a for a in agg if a["cell"].get("method") == "slap" and a["K"] is not None]
    if len({a["K"] for a in slap}) > 1:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for i, keep in enumerate(sorted({a["keep"] for a in slap})):
            rs = sorted(
                [a for a in slap if a["keep"] == keep and a["scoring"] == "fresh"],
                key=lambda r: r["K"],
            )
            ax.errorbar(
                [r["K"] for r in rs],
                [r["eval_loss"][0] for r in rs],
                yerr=[r["eval_loss"][1] for r in rs],
                marker=MARKERS[i],
                capsize=3,
                label=f"slap, keep {keep:g}",
            )
        full_line(ax)
        ax.set(xlabel="number of loss strata K", ylabel=f"final {LOSS}")
        _title(ax, task, "effect of K", ["slap (fresh scoring)"], [a["keep"] for a in slap])
        _legend(ax)
        save(fig, "quality_vs_strata.png")
    kept_distribution(plt, rows, task, folder, save)
    # 6. Compute per method (paper Fig. 10): training and scoring stacked, relative to full.
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(agg) + 2), 4.5))
    names = [f"{a['label']} {a['keep']:g}" for a in agg]
    train = [a["flops_training"][0] / unit for a in agg]
    ax.bar(names, train, color="tab:blue", label="training")
    ax.bar(
        names,
        [a["flops_scoring"][0] / unit for a in agg],
        bottom=train,
        color="tab:orange",
        hatch="//",
        label="scoring (selection)",
    )
    if full:
        ax.axhline(1.0, color="black", ls="--", lw=1, label="full data")
    ax.set(ylabel="FLOPs / full-data FLOPs" if full else "FLOPs", xlabel="method and keep ratio")
    ax.tick_params(axis="x", rotation=70, labelsize=7)
    _title(ax, task, "compute per method", methods, [a["keep"] for a in agg])
    _legend(ax)
    save(fig, "flops.png")
    # 7. Eval loss by difficulty third, minus full data's, at the end.
    if full and not math.isnan(full["tercile_easy"][0]):
        thirds = ("easy", "middle", "hard")
        pruned = [a for a in agg if a is not full]
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        width = 0.8 / max(len(pruned), 1)
        for i, a in enumerate(pruned):
            # Paired by seed: the seed's own full-data run is the reference.
            diffs = [
                mean_ci(
                    [
                        run["eval_loss_terciles"][t] - ref["eval_loss_terciles"][t]
                        for s, run in a["runs"].items()
                        if (ref := full["runs"].get(s))
                        and run.get("eval_loss_terciles")
                        and ref.get("eval_loss_terciles")
                    ]
                )
                for t in thirds
            ]
            ax.bar(
                [j + (i - (len(pruned) - 1) / 2) * width for j in range(3)],
                [d[0] for d in diffs],
                width,
                yerr=[d[1] for d in diffs],
                capsize=2,
                color=style[a["label"]]["color"],
                label=f"{a['label']} {a['keep']:g} ({a['seeds']} seeds)",
            )
        ax.axhline(0.0, color="black", ls="--", lw=1, label="full data")
        ax.set_xticks(range(3), [f"{t} third" for t in thirds])
        ax.set(
            xlabel="eval examples by the base model's loss",
            ylabel="Δ eval loss vs full, same seed (nats)",
        )
        _title(ax, task, "eval loss by difficulty, final", methods, [a["keep"] for a in pruned])
        _legend(ax)
        save(fig, "loss_by_difficulty.png")
    return paths


def kept_distribution(plt, rows, task, folder, save) -> None:
    """Loss distribution of kept examples (paper Fig. 3), one seed, the smallest keep ratio."""
    fresh = [
        r
        for r in rows
        if r["cell"].get("scoring", "fresh") == "fresh" and "num_strata" not in r["cell"]
    ]
    keep = min((r["cell"].get("keep_ratio", 1.0) for r in fresh), default=1.0)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    drawn_all, shown = False, []
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
            os.path.join(os.path.dirname(folder), "cells", row["cell_id"], "selection.jsonl")
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
            shown.append(method)
    ax.set(xlabel="per-example loss when scored (nats / token)", ylabel="density")
    _title(ax, task, "which losses each method keeps, one seed", shown or ["none"], [keep])
    _legend(ax)
    save(fig, "kept_loss_distribution.png")
