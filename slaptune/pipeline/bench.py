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
    eval_every: 0.1       # optional: eval-curve spacing, a share of full-data FLOPs

Cells that differ only in settings their method ignores are run once (``full`` has no keep
ratio; only ``slap`` and ``ccs`` have strata). A cell whose ``metrics.json`` exists is never run
again; one interrupted half-way is started over. ``results.jsonl`` gets one line per cell.

A cell's ``seed`` sets data order, initialisation (presets) and, unless the cell or base names a
``selection_seed``, selection randomness too: seeds of a grid are then independent replicates.
Each line also carries ``eval_curve`` (eval loss each time the run's FLOPs, scoring included,
cross another ``eval_every`` share of the full-data run's FLOPs; see ``eval_curve.py``), its
``best`` and ``final`` points, ``eval_loss_terciles`` (easy / middle / hard third of the eval
examples by the base model's loss, fixed once per task and cached as
``base_terciles_<hash>.json``), and ``truncated_share_train`` / ``_eval``: rows cut at
``max_length`` (rows exactly ``max_length`` long count as cut: an upper bound). The time spent
on the curve is left out of ``wall_clock_s`` and ``time_training_s``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil

from ..files import write_atomic
from ..select import get_spec
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
    "records_skipped",
)


def load_grid(path: str) -> dict:
    spec = load_yaml(path)
    unknown = sorted(set(spec) - {"base", "grid", "extra", "eval_every"})
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {unknown}; use base, grid, extra, eval_every"
        )
    every = spec.get("eval_every", 0.1)
    if not isinstance(every, (int, float)) or not 0 < every <= 1:
        raise ValueError(f"{path}: eval_every must be a share in (0, 1], got {every!r}")
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
    """Drop settings the cell's method ignores (its ``MethodSpec`` says which), so equivalent
    cells coincide: ``full`` has no keep ratio, ``random`` no scoring, only methods with strata
    have ``num_strata``.

    >>> normalise({"method": "random", "num_strata": 3, "scoring": "reuse", "keep_ratio": 0.5})
    {'method': 'random', 'keep_ratio': 0.5}
    >>> normalise({"method": "full", "keep_ratio": 0.5, "tilt": "rank"})
    {'method': 'full', 'keep_ratio': 1.0}
    """
    cell = dict(cell)
    spec = get_spec(cell.get("method", "slap"))
    if spec.keeps_everything:
        cell["keep_ratio"] = 1.0
    for key in spec.ignored(cell) - {"keep_ratio"}:
        cell.pop(key)
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


def cell_options(base: dict, cell: dict) -> dict:
    """The cell's RunConfig options: base, then the cell; the run seed drives selection too.

    >>> cell_options({"model": "m"}, {"seed": 2})["selection_seed"]
    2
    >>> cell_options({"selection_seed": 7}, {"seed": 2})["selection_seed"]
    7
    """
    opts = {**base, **cell}
    opts.setdefault("selection_seed", opts.get("seed", 0))
    return opts


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
                    **cell_options(base, c),
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
            probe = CurveSetup(cfg, output_dir, spec.get("eval_every", 0.1))
            metrics = run_training(cfg, setup=probe)
            row = {
                "cell_id": cid,
                "cell": cell,
                "config": cell_options(base, cell),
                **{k: metrics.get(k) for k in RESULT_KEYS},
                **{k: v for k, v in metrics.items() if "/" in k},
                **probe.results(),
            }
            # The curve's evaluations are not the method's cost.
            for k in ("wall_clock_s", "time_training_s"):
                row[k] = round(row[k] - row.get("time_eval_curve_s", 0.0), 3)
            with open(results_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        bar.update(1)
    bar.close()
    rows = read_results(results_path)
    from .bench_report import write_report

    write_report(rows, output_dir, grid_path)
    return rows


class CurveSetup:
    """``run_training``'s setup hook: base-model terciles (cached per task), the eval-curve
    callback, and the share of rows cut at ``max_length``."""

    def __init__(self, cfg: RunConfig, output_dir: str, every: float):
        self.cfg, self.output_dir, self.every = cfg, output_dir, every
        self.curve = None
        self.extra: dict = {}

    def __call__(self, trainer, tok, data) -> None:
        from .eval_curve import EvalCurve, pooled_loss, tercile_groups
        from .evaluate import per_example_losses

        pad = tok.pad_token_id or 0
        key = hashlib.sha1(
            json.dumps([self.cfg.model, [r["input_ids"] for r in data.eval_rows]]).encode()
        ).hexdigest()[:12]
        cache = os.path.join(self.output_dir, f"base_terciles_{key}.json")
        # Base model, before any step: the curve's point 0, and (once per task) the terciles.
        # Its per-example losses are cached per seed (a preset's initialisation follows the
        # seed; a pretrained model, with or without fresh LoRA adapters, does not move).
        info = {}
        if os.path.exists(cache):
            with open(cache) as f:
                info = json.load(f)
        base = info.setdefault("base_losses", {})
        seed = str(self.cfg.seed)
        if seed not in base:
            base[seed] = per_example_losses(trainer.model, data.eval_rows, pad)
            sums = base[seed][0]
            per_token = [s / max(c, 1) for s, c in zip(*base[seed])]
            info.setdefault("terciles", tercile_groups(per_token))
            info.update(model=self.cfg.model, eval_rows=len(sums))
            write_atomic(cache, json.dumps(info))
        sums, counts = base[seed]
        groups = info["terciles"]
        self.curve = EvalCurve(
            trainer,
            data.eval_rows,
            terciles=groups,
            train_rows=data.train_rows,
            epochs=self.cfg.epochs,
            every=self.every,
            pad_id=pad,
        )
        point = {"flops_fraction": 0.0, "target": 0.0, "step": 0}
        point["eval_loss"] = pooled_loss(sums, counts, list(range(len(sums))))
        point["terciles"] = {
            n: pooled_loss(sums, counts, g) for n, g in zip(("easy", "middle", "hard"), groups)
        }
        self.curve.curve.append(point)
        trainer.add_callback(self.curve)
        cap = self.cfg.max_length
        self.extra = {
            "max_length": cap,
            "truncated_share_train": _share_at_cap(data.train_rows, cap),
            "truncated_share_eval": _share_at_cap(data.eval_rows, cap),
        }

    def final_heldout(self, trainer) -> dict | None:
        """The held-out loss at the final weights, when the curve's last point measured it."""
        last = self.curve.last_eval if self.curve else None
        if last is None or last[0] != trainer.state.global_step:
            return None
        if trainer.args.load_best_model_at_end:  # the final weights are another step's
            return None
        from .evaluate import heldout_from_sums

        return heldout_from_sums(last[1], last[2])

    def results(self) -> dict:
        if self.curve is None:
            return dict(self.extra)
        return {**self.curve.summary(), "full_flops_reference": self.curve.full_flops, **self.extra}


def _share_at_cap(rows: list[dict], cap: int) -> float:
    return round(sum(len(r["input_ids"]) >= cap for r in rows) / max(len(rows), 1), 4)


def read_results(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grid", disable=not enabled, unit="cell")
