"""``slaptune train``: fine-tune with on-policy selection; see ``slaptune train --help``."""

from __future__ import annotations

import json
import os

from ...pipeline.run_config import RunConfig
from ..errors import check_writable, describe, remove_partial
from ..options import add_dataclass_flags, resolve


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="fine-tune a model with SLAP (or a baseline) selection",
        description="Fine-tune with on-policy selection. Flags and --config YAML "
        "keys share names (keep_ratio <-> --keep-ratio). Data: --data PATH[:WEIGHT] "
        "(repeatable) with --columns FORMAT_FIELD=FILE_FIELD,... per file, or --dataset-name "
        "with --online.",
    )
    add_dataclass_flags(p, RunConfig)


def diverged(e: Exception, cfg: RunConfig) -> Exception:
    """Non-finite losses in a run that started from finite data mean the weights blew up: the
    learning rate, not the data, is to blame."""
    text = str(e)
    if isinstance(e, ValueError) and "non-finite" in text:
        return ValueError(
            f"training diverged at learning_rate {cfg.learning_rate:g}: the losses became "
            "non-finite (nan or inf); lower --learning-rate (fine-tuning typically uses 1e-5 "
            "to 3e-3) or add --warmup-ratio"
        )
    return e


def run(args) -> int:
    from ...pipeline.report import summary_lines
    from ...pipeline.train import SUMMARY_KEYS, run_training

    cfg = resolve(RunConfig, args)
    check_writable(cfg.output_dir)
    existed = os.path.exists(cfg.output_dir)
    try:
        metrics = run_training(cfg)
    except Exception as e:  # an expected failure is one line; a bug keeps its traceback
        message = describe(diverged(e, cfg))
        if message is None:
            raise
        raise ValueError(message + remove_partial(cfg.output_dir, existed)) from None
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 alone prints the summary
        return 0
    print(json.dumps({k: metrics.get(k) for k in SUMMARY_KEYS}, indent=1))
    for line in summary_lines(metrics):  # task metric, skipped records, compute split
        print(line)
    print(f"outputs in {cfg.output_dir}")
    return 0
