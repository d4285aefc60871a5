"""``slaptune demo``: full data vs SLAP vs random at the same budget, on the embedded dataset and
a tiny preset model; a side-by-side table, a plot and a markdown report."""

from __future__ import annotations

import json
import os
import time

from ..data.demo import demo_records
from ..files import write_atomic
from .report import busy_note, comparison_table, pyplot
from .run_config import RunConfig
from .train import run_training

COLUMNS = [
    ("run", "run"),
    ("keep_ratio", "keep"),
    ("eval_loss", "eval loss"),
    ("qa/exact_match", "QA exact match"),
    ("translation/chrf", "translation chrF"),
    ("samples_trained", "examples trained"),
    ("tokens_trained", "tokens trained"),
    ("flops_total", "FLOPs (scoring incl.)"),
    ("flops_vs_full", "FLOPs / full"),
    ("wall_clock_s", "wall-clock s"),
    ("wall_vs_full", "wall / full"),
    ("cpu_s", "process CPU s"),
    ("cpu_vs_full", "CPU / full"),
    ("load_avg", "load avg"),
]


def demo_runs(keep_ratio: float) -> list[tuple[str, dict]]:
    return [
        ("full", {"method": "full", "keep_ratio": 1.0}),
        ("slap-fresh", {"method": "slap", "keep_ratio": keep_ratio, "scoring": "fresh"}),
        ("slap-reuse", {"method": "slap", "keep_ratio": keep_ratio, "scoring": "reuse"}),
        ("random", {"method": "random", "keep_ratio": keep_ratio}),
    ]


def write_jsonl(path: str, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


PANELS = [  # key, title, y label, reference at full data
    ("eval_loss", "Held-out loss (lower is better; zoomed axis)", "eval loss (nats/token)", "full"),
    ("flops_vs_full", "Compute, scoring included", "FLOPs / full-data FLOPs", 1.0),
    ("time_vs_full", "Time (wall-clock is noisy when shared)", "time / full-data time", 1.0),
]


def plot_comparison(rows: list[dict], path: str, title: str = "") -> str:
    """Eval loss, FLOPs and time of each run next to full data's (dashed line). Rows with the
    same ``run`` name are seeds: bars show their mean and error bars one standard deviation.
    The loss axis starts near the data, not at 0, where a few-% gap would vanish.

    >>> import os, tempfile
    >>> rows = [{"run": r, "eval_loss": loss, "flops_vs_full": f, "wall_vs_full": w,
    ...          "cpu_vs_full": w} for r, loss, f, w in [("full", 2.00, 1, 1), ("full", 2.02, 1, 1),
    ...          ("slap", 2.05, 0.8, 0.9), ("slap", 2.07, 0.8, 1.3)]]
    >>> path = plot_comparison(rows, os.path.join(tempfile.mkdtemp(), "c.png"), "two seeds")
    >>> os.path.getsize(path) > 10_000
    True
    """
    plt = pyplot()

    names = list(dict.fromkeys(r["run"] for r in rows))
    by_run = {n: [r for r in rows if r["run"] == n] for n in names}
    seeds = max(len(v) for v in by_run.values())
    colours = ["grey", "C0", "C2", "C1", "C3", "C4"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    for ax, (key, panel, ylabel, ref) in zip(axes, PANELS):
        keys = [("wall_vs_full", "wall-clock"), ("cpu_vs_full", "process CPU")]
        if key != "time_vs_full":
            keys = [(key, None)]
        width = 0.8 / len(keys)
        lows, highs = [], []
        for j, (k, label) in enumerate(keys):
            stats = [
                _mean_sd([r[k] for r in by_run[n] if r.get(k) is not None] or [0.0]) for n in names
            ]
            xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(names))]
            means, sds = [m for m, _ in stats], [sd for _, sd in stats]
            if key == "eval_loss":  # points, not bars: this axis is zoomed and does not start at 0
                for x, m, sd, c in zip(xs, means, sds, colours):
                    ax.errorbar(x, m, yerr=sd if seeds > 1 else None, fmt="o", ms=9, color=c,
                                capsize=4)  # fmt: skip
            else:
                ax.bar(
                    xs,
                    means,
                    width=width * 0.95,
                    yerr=sds if seeds > 1 else None,
                    capsize=4,
                    color=colours[: len(names)],
                    alpha=1.0 if j == 0 else 0.5,
                    hatch=None if j == 0 else "//",
                    edgecolor="k" if label else None,
                    label=label,
                )
            lows += [m - sd for m, sd in stats]
            highs += [m + sd for m, sd in stats]
        ref_value = _mean_sd([r[key] for r in by_run.get("full", [])])[0] if ref == "full" else ref
        if ref_value is not None and (ref != "full" or by_run.get("full")):
            ax.axhline(ref_value, color="k", ls="--", lw=1, label="full data")
        if key == "eval_loss":  # zoom: the differences between runs are a few %
            span = max(highs) - min(lows) or abs(max(highs)) * 0.05 or 1.0
            ax.set_ylim(min(lows) - 0.5 * span, max(highs) + 0.5 * span)
            ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_title(panel, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    seeds_note = f", mean of {seeds} seeds (bars: 1 sd)" if seeds > 1 else ", one seed"
    fig.suptitle((title or "slaptune demo") + seeds_note, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def time_notes(rows: list[dict]) -> list[str]:
    """How far to trust the time columns: always that wall-clock is noisy when shared, and which
    runs ran on a busy machine (``report.busy_note``).

    >>> rows = [{"run": "full", "load_avg": 3.0, "cores": 2, "cpu_per_wall": 1.7, "threads": 2},
    ...         {"run": "random", "load_avg": 0.5, "cores": 2, "cpu_per_wall": 1.8, "threads": 2}]
    >>> print("\\n".join(time_notes(rows)))  # doctest: +ELLIPSIS
    Wall-clock ...
    `full` ran on a busy machine: load average 3 on 2 cores.
    """
    lines = [
        "Wall-clock ratios on a shared machine are mostly other processes' load (identical work "
        "has measured 0.1x and 1.5x); process CPU time (all threads of this process) is steadier "
        "but also grows under contention. FLOPs / full is the comparison that does not depend "
        "on the machine."
    ]
    for r in rows:
        note = busy_note(r)
        if note:
            why = note.removeprefix("the machine was busy: ")
            lines.append(f"`{r['run']}` ran on a busy machine: {why}.")
    return lines


def run_demo(
    output_dir: str,
    keep_ratio: float = 0.7,
    model: str = "llama-5m",
    epochs: float = 3.0,
    n_train: int = 1200,
    seed: int = 0,
    progress: bool = True,
    threads: int = 0,
) -> dict:
    if os.path.exists(output_dir) and os.listdir(output_dir):
        raise FileExistsError(
            f"{output_dir} exists and is not empty; choose another --output-dir or remove it"
        )
    os.makedirs(os.path.join(output_dir, "data"), exist_ok=True)
    train, test = demo_records(n_train=n_train, n_test=150, seed=seed)
    train_path = os.path.join(output_dir, "data", "train.jsonl")
    test_path = os.path.join(output_dir, "data", "test.jsonl")
    write_jsonl(train_path, train)
    write_jsonl(test_path, test)
    rows = []
    t0 = time.perf_counter()
    for name, overrides in demo_runs(keep_ratio):
        print(f"== {name} ==", flush=True)
        cfg = RunConfig(
            model=model,
            data=[train_path],
            eval_data=[test_path],
            data_format="prompt-completion",
            max_length=64,
            epochs=epochs,
            batch_size=16,
            grad_accum=2,
            learning_rate=3e-3,
            warmup_ratio=0.05,
            tokenizer_vocab=512,
            seed=seed,
            logging_steps=20,
            eval_generate=150,
            max_new_tokens=12,
            output_dir=os.path.join(output_dir, name),
            progress=progress,
            threads=threads,
            **overrides,
        )
        m = run_training(cfg)
        rows.append({"run": name, **{k: v for k, v in m.items() if k != "log_history"}})
    full = rows[0]
    for r in rows:
        r["flops_vs_full"] = round(r["flops_total"] / full["flops_total"], 3)
        r["wall_vs_full"] = round(r["wall_clock_s"] / full["wall_clock_s"], 3)
        r["cpu_vs_full"] = round(r["cpu_s"] / full["cpu_s"], 3) if full.get("cpu_s") else None
    table = comparison_table(rows, COLUMNS)
    title = f"slaptune demo: {model}, keep {keep_ratio:g}, {epochs:g} epochs, {len(train)} examples"
    plot = plot_comparison(rows, os.path.join(output_dir, "comparison.png"), title)
    notes = time_notes(rows)
    report = "\n".join(
        [
            "# slaptune demo",
            "",
            f"Embedded multi-task data ({len(train)} train / {len(test)} test), model preset "
            f"`{model}`, {epochs:g} epochs, candidate window 32 (16 x 2 accumulation), "
            f"keep ratio {keep_ratio} for the pruned runs.",
            "",
            table,
            "",
            "FLOPs are analytic (2P per scored token, 6P per trained token); wall-clock includes "
            "scoring and selection. `slap-reuse` trains on everything in epoch 1 (no scores yet) "
            "and prunes from recorded scores afterwards; `slap-fresh` pays a scoring forward per "
            "window.",
            "",
            *notes,
            "",
            f"![comparison]({os.path.basename(plot)})",
            "",
            f"Total demo time: {time.perf_counter() - t0:.0f} s.",
        ]
    )
    write_atomic(os.path.join(output_dir, "report.md"), report + "\n")
    print(table)
    for note in notes:
        print(note)
    print(f"report: {os.path.join(output_dir, 'report.md')}")
    return {"rows": rows, "table": table}
