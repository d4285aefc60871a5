"""``slaptune bench``: a grid of methods x keep ratios x seeds on your data (see issue 6)."""

from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="grid of methods x keep ratios x seeds, resumable")
    p.add_argument("--grid", required=True, help="YAML: base run options plus grid lists")
    p.add_argument("--output-dir", required=True)


def run(args) -> int:
    from ...pipeline.bench import run_bench

    run_bench(args.grid, args.output_dir)
    return 0
