"""Plots, the console summary lines and the markdown comparison table (matplotlib, headless).

Every plot is titled with the run it shows (method, keep ratio, scoring, tasks); pass the run's
metrics (or any dict with ``method``, ``keep_ratio``, ``scoring``) as ``run``.
"""

from __future__ import annotations

import json
import os

from ..select import get_spec

# Short names of the headline task metrics in titles and summaries.
METRIC_NAMES = {"token_f1": "token F1", "chrf": "chrF", "rougeL": "ROUGE-L"}


def read_selection_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed): the one place
    every plot of slaptune gets it from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_title(run: dict | None, records: list[dict] = ()) -> str:
    """What a plot shows, in one line.

    >>> run_title({"method": "slap", "keep_ratio": 0.7, "scoring": "reuse", "qa/token_f1": 0.1})
    'slap, keep 0.7, reuse scoring, task: qa'
    >>> run_title(None, [{"scoring": "fresh", "seen": 32, "kept": 16}])
    'keep 0.5 (kept / seen), fresh scoring'
    """
    run = run or {}
    parts = [run["method"]] if run.get("method") else []
    if run.get("keep_ratio") is not None:
        parts.append(f"keep {run['keep_ratio']:g}")
    elif records:
        seen = sum(r.get("seen", 0) for r in records)
        if seen:
            parts.append(f"keep {sum(r.get('kept', 0) for r in records) / seen:.2g} (kept / seen)")
    scoring = run.get("scoring") or next((r["scoring"] for r in records if "scoring" in r), None)
    if scoring and not get_spec(run.get("method", "slap")).keeps_everything:
        parts.append(f"{scoring} scoring")
    tasks = sorted({k.split("/")[0] for k in run if "/" in k})
    if tasks:
        parts.append("task: " + ", ".join(tasks))
    return ", ".join(parts) or "slaptune run"


def epoch_starts(records: list[dict], log_history: list[dict] = ()) -> list[tuple[int, int]]:
    """``(optimizer step, epoch number from 1)`` where each epoch after the first begins.

    >>> epoch_starts([{"step": 0, "epoch": 0}, {"step": 1, "epoch": 0}, {"step": 2, "epoch": 1}])
    [(2, 2)]
    """
    out, last = [], None
    for r in records:
        if last is not None and r["epoch"] != last:
            out.append((r["step"], r["epoch"] + 1))
        last = r["epoch"]
    if not out and not records:  # no selection log: whole epochs crossed between logged steps
        prev = 0.0
        for h in log_history:
            if "epoch" in h and int(h["epoch"]) > int(prev) and "loss" in h:
                out.append((h["step"], int(h["epoch"]) + 1))
            prev = h.get("epoch", prev)
    return out


def _mark_epochs(ax, starts) -> None:
    for i, (step, epoch) in enumerate(starts):
        ax.axvline(step, color="grey", ls=":", lw=1, label="epoch start" if i == 0 else None)
        ax.annotate(
            f"epoch {epoch}", (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
            textcoords="offset points", fontsize=8, color="grey",
        )  # fmt: skip


def plot_losses(
    log_history: list[dict], records: list[dict], path: str, run: dict | None = None
) -> str:
    """Training loss (kept rows), the candidate window's loss where scored, eval loss, and epoch
    boundaries. Under reuse scoring the window loss is each candidate's score from when it was
    last trained (an epoch earlier), so it lags and steps down at epoch starts: said in the
    legend and the title."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    # Trainer logs the mean over each logging interval: drawn across that interval, not as a
    # point at its end where it would sit far above the per-step curves.
    train, prev = [h for h in log_history if "loss" in h], 0
    label = "train loss (Trainer log: mean over each interval)"
    for n, h in enumerate(train):
        ax.hlines(h["loss"], prev, h["step"], color="C0", lw=2.5, label=None if n else label)
        prev = h["step"]
    last_step = max((h.get("step", 0) for h in log_history), default=0)
    final = [h for h in log_history if "train_loss" in h]
    if not train and final:  # fewer steps than logging_steps: only the run's mean is known
        ax.hlines(final[-1]["train_loss"], 0, last_step, color="C0", lw=2.5,
                  label="train loss, mean over the whole run")  # fmt: skip
    scored = [r for r in records if r.get("loss_window") is not None]
    reuse = any(r.get("scoring") == "reuse" for r in records)
    if scored:
        steps = [r["step"] + 1 for r in scored]
        what = "stale: scores from each one's last training forward"
        if not reuse:
            what = "fresh scoring forward before the step"
        ax.plot(steps, [r["loss_window"] for r in scored], color="C1", alpha=0.8,
                label=f"all candidates of the window ({what})")  # fmt: skip
        kept = [(x, r["loss_kept"]) for x, r in zip(steps, scored) if r.get("loss_kept")]
        if kept and any(r["kept"] < r["seen"] for r in scored):
            ax.plot(
                *zip(*kept), color="C2", alpha=0.8, label="kept rows of the window (same scores)"
            )
    evals = [h for h in log_history if "eval_loss" in h]
    if not evals and (run or {}).get("eval_loss") is not None:  # evaluated once, at the end
        evals = [{"step": last_step, "eval_loss": run["eval_loss"]}]
    if evals:
        ax.scatter(
            [h["step"] for h in evals],
            [h["eval_loss"] for h in evals],
            color="k",
            label="held-out (eval) loss",
            zorder=3,
        )
    _mark_epochs(ax, epoch_starts(records, log_history))
    title = "Loss per optimizer step: " + run_title(run, records)
    if reuse and scored:
        title += (
            "\nreuse: a window's scores are from each example's previous epoch, so there are"
            "\nnone in epoch 1 and the curves step down at each epoch start"
        )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("optimizer step")
    ax.set_xlim(left=0)
    ax.set_ylabel("cross-entropy (nats per target token)")
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def window_ranks(records: list[dict]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Losses and within-window loss ranks of the scored candidates, split kept / skipped.

    Ranks are normalised per window (0: the window's lowest loss, 1: its highest), so windows
    scored at different points of training compare.

    >>> rec = {"seen_ids": [5, 6, 7], "seen_losses": [2.0, 1.0, 3.0], "kept_ids": [7, 5]}
    >>> window_ranks([rec])
    ([2.0, 3.0], [1.0], [0.5, 1.0], [0.0])
    """
    kept_loss, skip_loss, kept_rank, skip_rank = [], [], [], []
    for r in records:
        pairs = [
            (i, v) for i, v in zip(r.get("seen_ids", []), r.get("seen_losses", [])) if v is not None
        ]
        if len(pairs) < 2:
            continue
        kept = set(r["kept_ids"])
        order = sorted(range(len(pairs)), key=lambda j: pairs[j][1])
        for rank, j in enumerate(order):
            i, loss = pairs[j]
            q = rank / (len(pairs) - 1)
            (kept_loss if i in kept else skip_loss).append(loss)
            (kept_rank if i in kept else skip_rank).append(q)
    return kept_loss, skip_loss, kept_rank, skip_rank


def _example_windows(ax, records: list[dict], n: int = 4) -> None:
    """A few windows side by side: each candidate's loss, kept ones coloured by the stratum of
    *that* window (strata are loss bins set per window, so colours compare only within one)."""
    usable = [r for r in records if any(v is not None for v in r.get("seen_losses", []))]
    picks = [
        usable[round(i * (len(usable) - 1) / max(n - 1, 1))] for i in range(min(n, len(usable)))
    ]
    cmap = pyplot().get_cmap("viridis")
    k_max = max((max(r["kept_strata"]) for r in picks if r.get("kept_strata")), default=0)
    shown = set()
    for x, r in enumerate(picks):
        strata = dict(zip(r["kept_ids"], r.get("kept_strata") or [None] * len(r["kept_ids"])))
        for j, (i, v) in enumerate(zip(r["seen_ids"], r["seen_losses"])):
            if v is None:
                continue
            dx = x + 0.3 * ((j * 0.618) % 1 - 0.5)  # deterministic jitter
            if i not in strata:
                lab = None if "skipped" in shown else "skipped"
                shown.add("skipped")
                ax.scatter(dx, v, marker="x", color="grey", s=18, label=lab)
                continue
            s = strata[i]
            key = "kept" if s is None or s < 0 else f"kept, stratum {s}"
            colour = "C0" if s is None or s < 0 else cmap(s / max(k_max, 1))
            ax.scatter(dx, v, color=colour, s=18, label=None if key in shown else key)
            shown.add(key)
    ax.set_xticks(range(len(picks)), [f"step {r['step']}" for r in picks])
    ax.set_ylabel("per-example loss (nats per target token)")
    binning = next((r["binning"] for r in picks if r.get("binning")), "equal_width")
    ax.set_title(
        f"A few windows: strata are that window's\n{binning.replace('_', '-')} loss bins "
        "(0 = lowest)"
    )
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(
        range(len(labels)), key=lambda i: (labels[i] == "skipped", len(labels[i]), labels[i])
    )
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7)


def plot_kept_histogram(records: list[dict], path: str, run: dict | None = None) -> str | None:
    """Which candidates were kept: their losses vs the skipped ones', their rank inside their
    own window, and the strata in a few example windows (None when nothing was scored)."""
    kept_loss, skip_loss, kept_rank, skip_rank = window_ranks(records)
    if not kept_loss and not skip_loss:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    labels = [f"skipped ({len(skip_loss)})", f"kept ({len(kept_loss)})"]
    ax.hist([skip_loss, kept_loss], bins=30, color=["grey", "C0"], alpha=0.75, label=labels,
            stacked=True)  # fmt: skip
    ax.set_xlabel("per-example loss when scored (nats per target token)")
    ax.set_ylabel("candidates (stacked)")
    ax.set_title("Losses of the scored candidates")
    ax.legend(fontsize=8)
    ax = axes[1]
    # The share kept per rank bin, not counts: bins hold unequal numbers of ranks (32 ranks in
    # 10 bins), which as counts would draw a U that selection did not make.
    edges = [i / 10 for i in range(11)]
    shares = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        k = sum(lo <= q < hi or (hi == 1 and q == 1) for q in kept_rank)
        n = k + sum(lo <= q < hi or (hi == 1 and q == 1) for q in skip_rank)
        shares.append(100 * k / n if n else 0.0)
    ax.bar([e + 0.05 for e in edges[:-1]], shares, width=0.09, color="C0")
    overall = 100 * len(kept_rank) / max(len(kept_rank) + len(skip_rank), 1)
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"all scored: {overall:.0f}% kept")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.set_xlabel("loss rank within its own window (0 = lowest, 1 = highest)")
    ax.set_ylabel("candidates kept (%)")
    ax.set_title("Share kept by loss rank inside the window")
    ax.legend(fontsize=8, loc="lower right")
    _example_windows(axes[2], records)
    fig.suptitle("Kept vs skipped candidates: " + run_title(run, records), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def task_metric_line(metrics: dict) -> str:
    """The headline task metric per task (``metrics["primary"]``), or how to get one."""
    primary = metrics.get("primary") or {}
    if not primary:
        return "task metric: none (no generations scored; --eval-generate N scores N examples)"
    parts = []
    for task in sorted(primary):
        key = primary[task]
        name = METRIC_NAMES.get(key.split("/")[-1], key.split("/")[-1].replace("_", " "))
        n = metrics.get(f"{task}/n")
        parts.append(
            f"{task} {name} {metrics.get(key, float('nan')):.4g}" + (f" (n={n})" if n else "")
        )
    return "task metric: " + ", ".join(parts)


def busy_note(metrics: dict) -> str | None:
    """Why this run's wall-clock is not to be trusted, or None when the machine looked free:
    the load average above the core count (threads waited for a core), or this process getting
    less than half of the cores its threads could use.

    >>> busy_note({"load_avg": 3.1, "cores": 2, "cpu_per_wall": 1.6, "threads": 2})
    'the machine was busy: load average 3.1 on 2 cores'
    >>> busy_note({"load_avg": 1.2, "cores": 2, "cpu_per_wall": 1.7, "threads": 2}) is None
    True
    """
    why = []
    cores, load = metrics.get("cores"), metrics.get("load_avg")
    if cores and load is not None and load > cores:
        why.append(f"load average {load:.2g} on {cores} cores")
    cpw, threads = metrics.get("cpu_per_wall"), metrics.get("threads")
    if cpw is not None and threads and cores and cpw < 0.5 * min(threads, cores):
        why.append(f"{cpw:.2g} CPU-seconds per second on {threads} threads")
    return "the machine was busy: " + ", ".join(why) if why else None


def summary_lines(metrics: dict) -> list[str]:
    """What a run achieved and spent, for the console at its end.

    >>> m = {"eval_loss": 2.41, "eval_perplexity": 11.1, "train_loss": 3.1,
    ...      "qa/token_f1": 0.25, "qa/n": 20, "primary": {"qa": "qa/token_f1"},
    ...      "records_skipped": 3, "samples_seen": 800, "samples_trained": 550,
    ...      "tokens_seen": 1000, "tokens_trained": 700, "flops_scoring": 2e9,
    ...      "flops_training": 6e9, "wall_clock_s": 30.0, "cpu_s": 50.0, "threads": 2}
    >>> print("\\n".join(summary_lines(m)))
    task metric: qa token F1 0.25 (n=20)
    eval loss 2.41 (perplexity 11.1), train loss 3.1
    records skipped: 3 (bad records left out by --skip-bad-records)
    trained on 550 of 800 examples seen (68.8%), 700 of 1,000 tokens (70.0%)
    FLOPs 8e+09 = scoring 2e+09 (25.0%) + training 6e+09
    time 30 s wall-clock, 50 s process CPU on 2 threads (wall-clock is noisy on a shared machine)
    """
    m = metrics
    lines = [task_metric_line(m)]
    if m.get("eval_loss") is not None:
        ppl = f" (perplexity {m['eval_perplexity']:.4g})" if m.get("eval_perplexity") else ""
        train = m.get("train_loss", float("nan"))
        lines.append(f"eval loss {m['eval_loss']:.4g}{ppl}, train loss {train:.4g}")
    skipped = m.get("records_skipped", 0)
    why = " (bad records left out by --skip-bad-records)" if skipped else ""
    lines.append(f"records skipped: {skipped}{why}")

    def share(a, b, what):
        return f"{a:,} of {b:,} {what}" + (f" ({100 * a / b:.1f}%)" if b else "")

    if "samples_seen" in m:
        lines.append(
            f"trained on {share(m['samples_trained'], m['samples_seen'], 'examples seen')}, "
            f"{share(m['tokens_trained'], m['tokens_seen'], 'tokens')}"
        )
    if "flops_training" in m:
        scoring, training = m["flops_scoring"], m["flops_training"]
        pct = 100 * scoring / (scoring + training) if scoring + training else 0.0
        lines.append(
            f"FLOPs {scoring + training:.3g} = scoring {scoring:.3g} ({pct:.1f}%) "
            f"+ training {training:.3g}"
        )
    wall = m.get("wall_clock_s", m.get("wall_s"))
    if wall is not None:
        cpu = f", {m['cpu_s']:.3g} s process CPU" if m.get("cpu_s") is not None else ""
        threads = f" on {m['threads']} threads" if m.get("threads") else ""
        lines.append(
            f"time {wall:.3g} s wall-clock{cpu}{threads} (wall-clock is noisy on a shared machine)"
        )
    note = busy_note(m)
    if note:
        lines.append(note + "; compare FLOPs, not wall-clock")
    return lines


def comparison_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` (dicts) with ``(key, title)`` columns."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) >= 1e4 or (0 < abs(v) < 1e-3) else f"{v:.4g}"
        return "-" if v is None else str(v)

    head = "| " + " | ".join(t for _, t in columns) + " |"
    sep = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])
