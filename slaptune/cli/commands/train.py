"""``slaptune train``: fine-tune with on-policy selection; see ``slaptune train --help``."""

from __future__ import annotations

import json
import os

from ...pipeline.run_config import RunConfig
from ..options import add_dataclass_flags, resolve


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="fine-tune a model with SLAP (or a baseline) selection",
        description="Fine-tune with on-policy selection. Flags and --config YAML "
        "keys share names (keep_ratio <-> --keep-ratio).",
    )
    add_dataclass_flags(p, RunConfig)


def run(args) -> int:
    from ...pipeline.train import SUMMARY_KEYS, run_training

    cfg = resolve(RunConfig, args)
    metrics = run_training(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 alone prints the summary
        return 0
    print(json.dumps({k: metrics.get(k) for k in SUMMARY_KEYS}, indent=1))
    print(f"outputs in {cfg.output_dir}")
    return 0
