"""Plots and the markdown comparison table (matplotlib, headless)."""

from __future__ import annotations

import json
import os


def read_selection_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(log_history: list[dict], records: list[dict], path: str) -> str:
    """Training loss (kept rows) and, where scored, the loss of the whole candidate window."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in log_history if "loss" in h]
    ax.plot(steps, [h["loss"] for h in log_history if "loss" in h], label="train loss (kept rows)")
    scored = [r for r in records if r.get("loss_window") is not None]
    if scored:
        ax.plot(
            [r["step"] + 1 for r in scored],
            [r["loss_window"] for r in scored],
            alpha=0.7,
            label="candidate window loss (scored)",
        )
    evals = [h for h in log_history if "eval_loss" in h]
    if evals:
        ax.scatter(
            [h["step"] for h in evals],
            [h["eval_loss"] for h in evals],
            color="k",
            label="eval loss",
            zorder=3,
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("token-mean cross-entropy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_kept_histogram(records: list[dict], path: str) -> str | None:
    """Loss distribution of all scored candidates vs the kept ones, the kept split by stratum."""
    seen, kept_by_stratum = [], {}
    for r in records:
        losses = dict(zip(r.get("seen_ids", []), r.get("seen_losses", [])))
        seen += [v for v in losses.values() if v is not None]
        strata = r.get("kept_strata") or [None] * len(r["kept_ids"])
        for i, s in zip(r["kept_ids"], strata):
            if losses.get(i) is not None:
                kept_by_stratum.setdefault(s, []).append(losses[i])
    if not seen:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = 40
    ax.hist(seen, bins=bins, alpha=0.35, color="grey", label=f"all candidates ({len(seen)})")
    keys = sorted(kept_by_stratum, key=lambda s: -1 if s is None else s)
    ax.hist(
        [kept_by_stratum[k] for k in keys],
        bins=bins,
        stacked=True,
        alpha=0.8,
        label=[
            ("kept" if k is None else "kept, unscored" if k == -1 else f"kept, stratum {k}")
            for k in keys
        ],
    )
    ax.set_xlabel("per-example loss when scored")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
