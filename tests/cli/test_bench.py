"""The bench machinery on a tiny grid: cells, dedupe, resume, report and plots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slaptune.cli.main import main
from slaptune.pipeline.bench import expand, load_grid
from slaptune.pipeline.bench_report import diff_ci, mean_ci
from tests.cli.test_commands import qa_records, write_jsonl

GRID = """
base:
  model: llama-tiny
  data: [{data}]
  data_format: qa
  epochs: 1
  batch_size: 4
  grad_accum: 2
  eval_size: 8
  eval_generate: 2
  max_new_tokens: 2
  tokenizer_vocab: 300
  max_length: 64
grid:
  method: [full, random, slap, hard]
  keep_ratio: [0.5]
  seed: [0, 1]
extra:
  - {{method: slap, scoring: reuse, keep_ratio: 0.5, seed: 0}}
"""


def test_mean_ci_matches_the_t_interval():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-3)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_diff_ci_is_the_welch_interval():
    d, h = diff_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])
    # Welch: var_a/n_a = 1/3, var_b = 0 -> df = 2, t = 4.303
    assert d == 2.0 and h == pytest.approx(4.303 * (1 / 3) ** 0.5, rel=1e-3)
    d, h = diff_ci([1.0], [0.5, 0.7])  # one seed: no interval, but still a difference
    assert d == pytest.approx(0.4) and h != h


def test_cells_that_differ_only_in_ignored_settings_run_once(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        "grid:\n  method: [full, random, slap]\n  keep_ratio: [0.8, 0.6]\n  num_strata: [3, 5]\n"
    )
    cells = expand(load_grid(str(path)))
    # full: 1 (no keep, no K); random: 2 keeps; slap: 2 keeps x 2 K
    assert len(cells) == 1 + 2 + 4


def test_bad_grid_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text("grid:\n  methd: [slap]\n")
    assert main(["bench", "--grid", str(path), "--output-dir", str(tmp_path / "o")]) == 2
    assert "grid has unknown option(s) ['methd']" in capsys.readouterr().err


def test_bench_runs_a_grid_and_resumes_cell_by_cell(tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(48))
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID.format(data=data))
    out = tmp_path / "suite" / "nq_open"
    assert main(["bench", "--grid", str(grid), "--output-dir", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 + 2 + 2 + 2 + 1  # full and each method x 2 seeds, + slap reuse
    assert all(r["eval_loss"] and r["flops_total"] and r["wall_clock_s"] for r in rows)
    report = (out / "report.md").read_text()
    assert "| slap | 0.5 | 2 |" in report and "| slap reuse | 0.5 | 1 |" in report
    # Every pruned method is set against full data and against the baseline without a
    # selector whose FLOPs are closest (full or random here).
    slap_line = next(x for x in report.splitlines() if x.startswith("| slap | 0.5 |"))
    vs_full, vs_equal = slap_line.split(" | ")[-6:-4]
    assert vs_full.startswith(("+", "-")) and "%" in vs_full
    assert vs_equal.startswith(("full 1: ", "random 0.5: "))
    for plot in ("quality_vs_compute", "quality_vs_pruning", "kept_loss_distribution", "flops"):
        assert (out / "plots" / f"{plot}.png").exists()
    # A second invocation runs nothing again.
    stamp = (out / "results.jsonl").stat().st_mtime_ns
    assert main(["bench", "--grid", str(grid), "--output-dir", str(out)]) == 0
    assert (out / "results.jsonl").stat().st_mtime_ns == stamp
    # The cross-task verdict tables read the same results (benchmarks/suite_verdicts.py).
    script = Path(__file__).parents[2] / "benchmarks" / "suite_verdicts.py"
    verdicts = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "suite")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Runs: 9 over 1 tasks." in verdicts
    claim1 = verdicts.split("#### Claim 1")[1].splitlines()
    assert any(x.startswith("| nq_open | ") and "%" in x for x in claim1)
    assert "| random | " in verdicts.split("#### Claim 2")[1]
