"""Compute of full-data training vs SLAP (fresh and reuse scoring) on real data, side by side.

Each row is a real ``slaptune train`` run (same pipeline as the CLI): GSM8K worked answers from
``--data-root`` (default ../shared/data), a llama preset built from a config, 3 epochs, candidate
window 16 x 2. Reported: samples and tokens trained, analytic FLOPs (scoring included),
wall-clock split into scoring, selection and training, and the ratios to full data.

    python benchmarks/compute_budget.py --out runs/compute_budget     # the table in docs/results.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

from slaptune.pipeline.report import comparison_table
from slaptune.pipeline.run_config import RunConfig
from slaptune.pipeline.train import run_training

RUNS = [
    ("full", {"method": "full", "keep_ratio": 1.0}),
    ("slap fresh 0.7", {"method": "slap", "keep_ratio": 0.7, "scoring": "fresh"}),
    (
        "slap fresh bf16 0.7",
        {"method": "slap", "keep_ratio": 0.7, "scoring": "fresh", "score_dtype": "bfloat16"},
    ),
    ("slap reuse 0.7", {"method": "slap", "keep_ratio": 0.7, "scoring": "reuse"}),
    (
        "slap reuse-sample 0.7",
        {"method": "slap", "keep_ratio": 0.7, "scoring": "reuse", "reuse_unscored": "sample"},
    ),
    ("slap fresh 0.6", {"method": "slap", "keep_ratio": 0.6, "scoring": "fresh"}),
    ("slap reuse 0.6", {"method": "slap", "keep_ratio": 0.6, "scoring": "reuse"}),
]
COLUMNS = [
    ("run", "run"),
    ("samples_trained", "samples trained"),
    ("tokens_trained", "tokens trained"),
    ("flops_scoring", "FLOPs scoring"),
    ("flops_training", "FLOPs training"),
    ("flops_vs_full", "FLOPs / full"),
    ("time_scoring_s", "scoring s"),
    ("time_selection_s", "selection s"),
    ("time_training_s", "training s"),
    ("wall_clock_s", "wall s"),
    ("wall_vs_full", "wall / full"),
    ("eval_loss", "eval loss"),
]


def subset(src: str, dst: str, n: int) -> str:
    with open(src) as f, open(dst, "w") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return dst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data"))
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--model", default="llama-5m")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--out", default="runs/compute_budget")
    p.add_argument("--runs", default="all", help="comma-separated run names, or all")
    a = p.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    gsm = os.path.join(a.data_root, "gsm8k", "grade_school_math", "data", "train.jsonl")
    data = subset(gsm, os.path.join(a.out, "train.jsonl"), a.n_train + 100)
    rows = []
    for name, opts in RUNS:
        if a.runs != "all" and name not in a.runs.split(","):
            continue
        cfg = RunConfig(
            model=a.model,
            data=[data],
            data_format="qa",
            eval_size=100,
            max_length=256,
            epochs=a.epochs,
            batch_size=16,
            grad_accum=2,
            learning_rate=2e-3,
            warmup_ratio=0.05,
            tokenizer_vocab=4096,
            logging_steps=50,
            eval_generate=0,
            progress=False,
            output_dir=os.path.join(a.out, name.replace(" ", "_")),
            **opts,
        )
        m = run_training(cfg)
        rows.append({"run": name, **{k: v for k, v in m.items() if k != "log_history"}})
        print(name, {k: m[k] for k in ("wall_clock_s", "flops_total", "eval_loss")}, flush=True)
    full = next((r for r in rows if r["run"] == "full"), rows[0])
    for r in rows:
        r["flops_vs_full"] = round(r["flops_total"] / full["flops_total"], 3)
        r["wall_vs_full"] = round(r["wall_clock_s"] / full["wall_clock_s"], 3)
        for k in ("time_scoring_s", "time_selection_s", "time_training_s"):
            r[k] = round(r[k], 1)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"params: {full['params']}, examples: {a.n_train}, epochs: {a.epochs}")
    print(comparison_table(rows, COLUMNS))


if __name__ == "__main__":
    main()
