"""The bench report: mean and 95% interval over seeds, each method against full data and random
pruning at equal data and at equal compute (eval curves), paired by seed; plots in
``bench_plots``."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import defaultdict

from ..files import write_atomic
from ..select import get_spec


def t95(df: float) -> float:
    """Two-sided 95% Student-t quantile for ``df`` degrees of freedom (fractional for Welch).

    >>> round(t95(2), 3), round(t95(1e6), 2)
    (4.303, 1.96)
    """
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (0 for a single value)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    if len(vals) == 1:
        return vals[0], 0.0
    return statistics.mean(vals), t95(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))


def paired_ci(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean of ``a[s] - b[s]`` over the seeds ``s`` both have, the half-width of its 95%
    t-interval (nan with < 2 pairs) and the number of pairs. Pairing by seed takes out what a
    seed does to both runs (data order, initialisation, selection draws).

    >>> d, h, n = paired_ci({0: 1.1, 1: 1.2, 2: 1.3}, {0: 1.0, 1: 1.1, 2: 1.25})
    >>> round(d, 4), round(h, 4), n
    (0.0833, 0.0717, 3)
    """
    seeds = sorted(set(a) & set(b), key=str)
    diffs = [a[s] - b[s] for s in seeds if a[s] is not None and b[s] is not None]
    if not diffs:
        return float("nan"), float("nan"), 0
    if len(diffs) < 2:
        return diffs[0], float("nan"), 1
    m, h = mean_ci(diffs)
    return m, h, len(diffs)


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


def diff(row: dict, other: dict, key: str = "eval_loss") -> tuple[float, float]:
    """``row`` minus ``other`` on ``key``: paired by seed when they share >= 2 seeds, else the
    Welch interval of the two groups."""
    d, h, n = paired_ci(row[f"{key}_by_seed"], other[f"{key}_by_seed"])
    if n >= 2:
        return d, h
    return diff_ci(row[f"{key}_values"], other[f"{key}_values"])


def relative(diff: tuple[float, float], reference: float) -> str:
    """A difference as a percentage of ``reference``; '*' marks an interval excluding zero."""
    d, h = diff
    if math.isnan(d):
        return "-"
    if math.isnan(h):
        return f"{100 * d / reference:+.1f}%"
    star = "*" if abs(d) > h else ""
    return f"{100 * d / reference:+.1f}% ± {100 * h / reference:.1f}{star}"


def delta(row: dict, other: dict, reference: float, key: str = "eval_loss") -> str:
    """``row``'s ``key`` minus ``other``'s (paired by seed), as :func:`relative` formats it."""
    return relative(diff(row, other, key), reference)


def md_row(cells: list[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def md_head(cells: list[str]) -> list[str]:
    """A markdown table header and its rule."""
    return [md_row(cells), "|" + "---|" * len(cells)]


def label(cell: dict) -> str:
    m = cell.get("method", "slap")
    parts = [m]
    if "num_strata" in get_spec(m).options and "num_strata" in cell:
        parts.append(f"K={cell['num_strata']}")
    if cell.get("scoring") == "reuse":
        parts.append("reuse")
    return " ".join(parts)


def quality_keys(rows: list[dict]) -> list[str]:
    keys = ["eval_loss"]
    extra = sorted({k for r in rows for k in r if "/" in k and not k.endswith("/n")})
    return keys + extra


def seed_of(run: dict):
    return run["cell"].get("seed", run.get("config", {}).get("seed", 0))


def aggregate(rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for r in rows:
        cell = {k: v for k, v in r["cell"].items() if k != "seed"}
        groups[json.dumps(cell, sort_keys=True)].append(r)
    out = []
    for key, rs in groups.items():
        cell = json.loads(key)
        config = rs[0].get("config", cell)  # base options + cell: the K actually used
        has_strata = "num_strata" in get_spec(cell.get("method", "slap")).options
        strata = config.get("num_strata", 5) if has_strata else None
        row = {
            "label": label(cell),
            "keep": cell.get("keep_ratio", 1.0),
            "K": strata,
            "scoring": config.get("scoring", "fresh"),
            "seeds": len(rs),
            "cell": cell,
            "runs": {seed_of(r): r for r in rs},
        }
        for k in quality_keys(rows) + [
            "flops_total",
            "flops_training",
            "flops_scoring",
            "wall_clock_s",
            "samples_trained",
            "tokens_trained",
            "eval_loss_best",
            "truncated_share_train",
        ]:
            row[k] = mean_ci([r.get(k) for r in rs])
        for name in ("easy", "middle", "hard"):
            row[f"tercile_{name}"] = mean_ci(
                [(r.get("eval_loss_terciles") or {}).get(name) for r in rs]
            )
        row["final_fraction"] = mean_ci([(r.get("final") or {}).get("flops_fraction") for r in rs])
        row["eval_loss_values"] = [r["eval_loss"] for r in rs if r.get("eval_loss") is not None]
        row["eval_loss_by_seed"] = {seed_of(r): r.get("eval_loss") for r in rs}
        out.append(row)
    return sorted(out, key=lambda r: (-r["keep"], r["label"]))


def curve_at(curve: list[dict], fraction: float) -> float | None:
    """A run's eval loss at a FLOPs fraction, linear between curve points; past the curve's
    end, its last value (that run had finished: it spent no more). None without a curve.

    >>> c = [{"flops_fraction": 0.0, "eval_loss": 3.0}, {"flops_fraction": 0.5, "eval_loss": 2.0}]
    >>> curve_at(c, 0.25), curve_at(c, 0.9)
    (2.5, 2.0)
    """
    pts = sorted((p["flops_fraction"], p["eval_loss"]) for p in curve or [])
    if not pts:
        return None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= fraction <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (fraction - x0) / (x1 - x0)
    return pts[-1][1] if fraction > pts[-1][0] else pts[0][1]


def equal_flops(row: dict, other: dict) -> tuple[float, float]:
    """``row`` minus ``other`` in eval loss at equal compute, paired by seed: both curves read at
    the FLOPs where the cheaper run of the pair ended (e.g. full data stopped at the FLOPs a
    pruned run spent in all)."""
    a, b = {}, {}
    for seed, run in row["runs"].items():
        ref = other["runs"].get(seed)
        if ref is None or not run.get("eval_curve") or not ref.get("eval_curve"):
            continue
        f = min(run["final"]["flops_fraction"], ref["final"]["flops_fraction"])
        a[seed], b[seed] = curve_at(run["eval_curve"], f), curve_at(ref["eval_curve"], f)
    d, h, n = paired_ci(a, b)
    return (d, h) if n else (float("nan"), float("nan"))


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
    """Eval-loss difference vs full data at the end (equal data is the keep column), vs full
    data and vs random at the same keep at equal FLOPs (curves), and vs the equal-compute
    baseline by end points; % of full data's loss (negative = better)."""
    if full is None:
        return ["-"] * 4
    ref = full["eval_loss"][0]
    if row is full:
        return ["-"] * 4
    rand = next((a for a in agg if a["label"] == "random" and a["keep"] == row["keep"]), None)
    out = [delta(row, full, ref), relative(equal_flops(row, full), ref)]
    out.append("-" if rand is None or rand is row else relative(equal_flops(row, rand), ref))
    base = equal_compute_baseline(row, agg)
    out.append(
        "-" if base is None else f"{base['label']} {base['keep']:g}: {delta(row, base, ref)}"
    )
    return out


def write_report(rows: list[dict], output_dir: str, grid_path: str) -> str:
    from .bench_plots import make_plots

    agg = aggregate(rows)
    full = next((a for a in agg if a["label"] == "full"), None)
    qkeys = quality_keys(rows)
    head = ["method", "keep", "seeds", *qkeys, "best (curve)", "easy / middle / hard third"]
    head += ["Δ vs full", "Δ vs full @ equal FLOPs", "Δ vs random @ equal FLOPs"]
    head += ["Δ vs equal-compute baseline (end points)"]
    head += ["FLOPs (scoring incl.)", "FLOPs / full", "wall s", "wall / full"]
    lines = md_head(head)
    for a in agg:
        ratio = f"{a['flops_total'][0] / full['flops_total'][0]:.3f}" if full else "-"
        wall = f"{a['wall_clock_s'][0] / full['wall_clock_s'][0]:.3f}" if full else "-"
        thirds = " / ".join(f"{a[f'tercile_{n}'][0]:.3f}" for n in ("easy", "middle", "hard"))
        lines.append(
            md_row(
                [a["label"], f"{a['keep']:g}", str(a["seeds"])]
                + [fmt(a[k]) for k in qkeys]
                + [fmt(a["eval_loss_best"]), thirds]
                + comparisons(a, agg, full)
                + [fmt(a["flops_total"]), ratio, fmt(a["wall_clock_s"]), wall]
            )
        )
    plots = make_plots(rows, agg, output_dir)
    cut = max((r.get("truncated_share_train") or 0.0 for r in rows), default=0.0)
    cap = sorted({r.get("max_length") for r in rows if r.get("max_length")})
    text = "\n".join(
        [
            "# slaptune bench report",
            "",
            f"Grid: `{grid_path}`; {len(rows)} runs. Mean ± 95% t-interval over seeds "
            "(scipy's t quantile). Δ: eval-loss difference as % of full data's (negative = "
            "better), paired by seed (same seed: same data order, initialisation and "
            "selection draws) with a 95% t-interval of the paired differences; with < 2 "
            "shared seeds, a Welch interval; * = the interval excludes 0. Equal FLOPs: both "
            "runs' eval curves (scoring included) read at the FLOPs where the cheaper one "
            "ended. best: lowest point of the eval curve. Thirds: eval loss on the easiest / "
            "middle / hardest third of eval examples by the base model's loss.",
            "",
            f"max_length {cap}; at most {100 * cut:.1f}% of training rows cut at max_length.",
            "",
            *lines,
            "",
            *[f"![{os.path.basename(p)}](plots/{os.path.basename(p)})" for p in plots],
            "",
        ]
    )
    path = os.path.join(output_dir, "report.md")
    write_atomic(path, text)
    return path
