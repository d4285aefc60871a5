"""``slaptune bench``: a grid of methods x keep ratios x seeds on your data (see issue 6)."""

from __future__ import annotations

import argparse

GRID_EXAMPLE = """\
The grid file (YAML):

  base:                 # options shared by every cell (the keys of 'slaptune train')
    model: llama-1m
    data: [train.jsonl]
    eval_data: [val.jsonl]
    data_format: qa
  grid:                 # every combination of these lists is one cell
    method: [full, random, slap]
    keep_ratio: [0.8, 0.7]
    seed: [0, 1, 2]
  extra:                # optional: more cells, each overriding base
    - {method: slap, scoring: reuse, keep_ratio: 0.7}

A finished cell (its metrics.json exists) is never run again, so rerunning the same command
resumes the grid. OUTPUT_DIR gets results.jsonl (one line per cell), report.md and plots.
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="grid of methods x keep ratios x seeds, resumable",
        description="Run a grid of training runs and report them with 95% intervals.",
        epilog=GRID_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--grid", required=True, help="the grid file (YAML; see below)")
    p.add_argument("--output-dir", required=True, help="where cells, results and report go")


def run(args) -> int:
    from ...pipeline.bench import run_bench
    from ..errors import check_writable

    check_writable(args.output_dir)
    run_bench(args.grid, args.output_dir)
    return 0
