"""``slaptune bench``: a grid of real training runs, resumable cell by cell, and its report.

The grid file (YAML)::

    base:                 # RunConfig fields shared by every cell (same keys as `train`)
      model: llama-1m
      data: [train.jsonl]
      eval_data: [val.jsonl]
      data_format: qa
    grid:                 # every combination of these lists is a cell
      method: [full, random, slap]
      keep_ratio: [0.8, 0.7]
      seed: [0, 1, 2]
    extra:                # optional: more cells, each a dict of overrides of base
      - {method: slap, scoring: reuse, keep_ratio: 0.7}

Cells that differ only in settings their method ignores are run once (``full`` has no keep
ratio; only ``slap`` and ``ccs`` have strata). A cell whose ``metrics.json`` exists is never run
again; one interrupted half-way is started over. ``results.jsonl`` gets one line per cell.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil

from .run_config import RunConfig, load_yaml
from .train import SUMMARY_KEYS, run_training

# One results.jsonl line per cell: the train summary plus the compute split.
RESULT_KEYS = (
    *SUMMARY_KEYS,
    "flops_total",
    "time_scoring_s",
    "time_selection_s",
    "time_training_s",
    "params",
)


def load_grid(path: str) -> dict:
    spec = load_yaml(path)
    unknown = sorted(set(spec) - {"base", "grid", "extra"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; use base, grid, extra")
    names = set(RunConfig.__dataclass_fields__)
    for section in ("base", "grid"):
        bad = sorted(set(spec.get(section) or {}) - names)
        if bad:
            raise ValueError(f"{path}: {section} has unknown option(s) {bad}")
    for i, cell in enumerate(spec.get("extra") or []):
        bad = sorted(set(cell) - names)
        if bad:
            raise ValueError(f"{path}: extra cell {i} has unknown option(s) {bad}")
    for key, values in (spec.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: grid.{key} must be a non-empty list")
    return spec


def normalise(cell: dict) -> dict:
    """Drop settings the cell's method ignores, so equivalent cells coincide."""
    cell = dict(cell)
    method = cell.get("method", "slap")
    if method == "full":
        cell["keep_ratio"] = 1.0
        for k in ("num_strata", "temperature", "binning", "scoring", "score_dtype"):
            cell.pop(k, None)
    if method not in ("slap", "ccs"):
        cell.pop("num_strata", None)
    if method != "slap":
        cell.pop("temperature", None)
        cell.pop("binning", None)
    if method == "random":
        cell.pop("scoring", None)
        cell.pop("score_dtype", None)
    return cell


def expand(spec: dict) -> list[dict]:
    grid = spec.get("grid") or {}
    keys = sorted(grid)
    cells = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    cells += [dict(c) for c in spec.get("extra") or []]
    out, seen = [], set()
    for c in cells:
        c = normalise(c)
        key = json.dumps(c, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def cell_id(cell: dict) -> str:
    parts = [f"{k}={cell[k]}" for k in sorted(cell)]
    digest = hashlib.sha1(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:8]
    readable = "_".join(p.replace("/", "-") for p in parts)[:80]
    return f"{readable}_{digest}"


def run_bench(grid_path: str, output_dir: str, progress: bool = True) -> list[dict]:
    """Run every cell not run yet; write ``results.jsonl`` and ``report.md``."""
    spec = load_grid(grid_path)
    base = dict(spec.get("base") or {})
    cells = expand(spec)
    # Every cell's config is validated before the first run starts.
    configs = [
        (
            c,
            RunConfig(
                **{
                    **base,
                    **c,
                    "output_dir": os.path.join(output_dir, "cells", cell_id(c)),
                    "progress": False,
                }
            ),
        )
        for c in cells
    ]
    os.makedirs(output_dir, exist_ok=True)
    results_path = os.path.join(output_dir, "results.jsonl")
    done = {r["cell_id"] for r in read_results(results_path)}
    bar = _bar(len(configs), progress)
    for cell, cfg in configs:
        cid = cell_id(cell)
        bar.set_description(cid[:40])
        if cid not in done:
            if os.path.exists(cfg.output_dir):  # interrupted earlier: start the cell over
                shutil.rmtree(cfg.output_dir)
            metrics = run_training(cfg)
            row = {
                "cell_id": cid,
                "cell": cell,
                "config": {**base, **cell},
                **{k: metrics.get(k) for k in RESULT_KEYS},
                **{k: v for k, v in metrics.items() if "/" in k},
            }
            with open(results_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        bar.update(1)
    bar.close()
    rows = read_results(results_path)
    from .bench_report import write_report

    write_report(rows, output_dir, grid_path)
    return rows


def read_results(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grid", disable=not enabled, unit="cell")
