"""The bench machinery on a tiny grid: cells, dedupe, resume, report and plots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slaptune.cli.main import main
from slaptune.pipeline.bench import expand, load_grid
from slaptune.pipeline.bench_report import diff_ci, mean_ci, paired_ci
from tests.shared import qa_records, write_jsonl

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


def test_paired_interval_is_the_t_interval_of_per_seed_differences():
    d, h, n = paired_ci({0: 2.0, 1: 3.0, 2: 4.5}, {0: 1.0, 1: 2.0, 2: 3.0, 3: 9.0})
    # differences 1, 1, 1.5 (seed 3 has no pair): sd = 0.2887, t(2) = 4.303
    assert n == 3 and d == pytest.approx(7 / 6)
    assert h == pytest.approx(4.3027 * 0.288675 / 3**0.5, rel=1e-3)
    # Welch on the same numbers is far wider: pairing removes the seed-to-seed spread.
    assert diff_ci([2.0, 3.0, 4.5], [1.0, 2.0, 3.0])[1] > 3 * h


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
    # Seeds are replicates: the run seed is the selection seed too.
    assert all(r["config"]["selection_seed"] == r["cell"]["seed"] for r in rows)
    # Every cell has an eval curve from the base model (0) to its end, best and final points,
    # and eval loss by difficulty third, the thirds fixed once per eval set.
    for r in rows:
        assert r["eval_curve"][0]["flops_fraction"] == 0.0 and len(r["eval_curve"]) >= 3
        assert r["final"]["eval_loss"] == pytest.approx(r["eval_loss"], abs=1e-3)
        assert r["eval_loss_best"] <= r["final"]["eval_loss"]
        assert set(r["eval_loss_terciles"]) == {"easy", "middle", "hard"}
        assert r["truncated_share_train"] is not None
    # Cached per eval set: here the eval split is drawn by seed, so one file per seed (a suite
    # with eval_data has one per task).
    assert len(list(out.glob("base_terciles_*.json"))) == 2
    full = next(r for r in rows if r["cell"]["method"] == "full")
    assert full["final"]["flops_fraction"] == pytest.approx(1.0, abs=1e-3)
    report = (out / "report.md").read_text()
    assert "| slap | 0.5 | 2 |" in report and "| slap reuse | 0.5 | 1 |" in report
    # Every pruned method is set against full data and against the baseline without a
    # selector whose FLOPs are closest (full or random here).
    slap_line = next(x for x in report.splitlines() if x.startswith("| slap | 0.5 |"))
    vs_full, vs_full_flops, vs_random_flops, vs_equal = slap_line.split(" | ")[-8:-4]
    for cell in (vs_full, vs_full_flops, vs_random_flops):
        assert cell.startswith(("+", "-")) and "%" in cell
    assert vs_equal.startswith(("full 1: ", "random 0.5: "))
    plots = ["quality_vs_compute", "quality_vs_pruning", "kept_loss_distribution", "flops"]
    plots += ["learning_curve_keep0.5", "loss_by_difficulty"]
    for plot in plots:
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


def load_script(name):
    import importlib.util

    path = Path(__file__).parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_records(n, fmt):
    if fmt == "qa":
        return [{"question": f"q{i}?", "answer": f"answer {i}"} for i in range(n)]
    return [
        {
            "messages": [
                {"role": "system", "content": "You are X."},
                {"role": "user", "content": f"q{i}?"},
                {"role": "assistant", "content": f"answer {i}"},
            ]
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("fmt", ["qa", "messages"])
def test_redundancy_pools_have_the_documented_make_up(fmt):
    prep = load_script("prepare_data")
    clean = clean_records(300, fmt)
    filler = [(f"Tell me a story about {i}.", f"Once upon a time {i}.") for i in range(100)]
    ask, ans = prep._prompt_of, prep._answer_of
    pool = prep.build_pool("filler50", clean, 200, seed=3, filler=filler)
    assert len(pool) == 200 and sum(r["pool"] == "filler" for r in pool) == 100
    assert pool == prep.build_pool("filler50", clean, 200, seed=3, filler=filler)  # seeded
    assert pool != prep.build_pool("filler50", clean, 200, seed=4, filler=filler)
    assert (
        sum(r["pool"] == "filler" for r in prep.build_pool("filler25", clean, 200, 3, filler)) == 50
    )
    dup = prep.build_pool("dup50", clean, 200, seed=3)
    unique = {ask(r): ans(r) for r in dup if r["pool"] == "clean"}
    assert len(unique) == 100
    copies = [r for r in dup if r["pool"] == "duplicate"]
    assert len(copies) == 50 and all(unique[ask(r)] == ans(r) for r in copies)
    reworded = [r for r in dup if r["pool"] == "reworded"]
    assert len(reworded) == 50
    for r in reworded:  # a new prompt around an original one, with that one's answer
        original = next(q for q in unique if q in ask(r))
        assert ask(r) != original and unique[original] == ans(r)
    noisy = prep.build_pool("noise20", clean, 200, seed=3)
    swapped = [r for r in noisy if r["pool"] == "noisy"]
    assert len(swapped) == 40
    # Every swapped answer belongs to another example of the pool (none keeps its own).
    assert all(ans(r) != f"answer {ask(r)[1:-1]}" for r in swapped)
    # Swapped, not invented: the pool still holds 200 distinct answers of its examples.
    assert len({ans(r) for r in noisy}) == 200


def test_suite_task_names_map_to_their_clean_task():
    suite = load_script("run_suite")
    assert suite.base_task("rolebench_filler50") == "rolebench"
    assert suite.base_task("nq_open_noise10") == "nq_open"
    assert suite.base_task("topical_chat") == "topical_chat"


@pytest.mark.parametrize("name, cells", [("protocol", 852), ("protocol-quick", 16)])
def test_protocol_suites_expand_to_valid_cells(name, cells, tmp_path):
    """Every cell of the protocol suites is a valid run config, seeded selection included."""
    import yaml

    from slaptune.pipeline.bench import cell_options
    from slaptune.pipeline.run_config import RunConfig

    suite_mod = load_script("run_suite")
    path = Path(__file__).parents[2] / "benchmarks" / "suites" / f"{name}.yaml"
    suite = suite_mod.fill(yaml.safe_load(path.read_text()), str(tmp_path), "models")
    for task in {suite_mod.base_task(t) for t in suite["tasks"]}:
        (tmp_path / task).mkdir()
        (tmp_path / task / "val.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    lengths = {t: {"whole95": 448} for t in suite["tasks"]}
    total = 0
    for task in suite["tasks"]:
        spec = suite_mod.task_spec(suite, task, str(tmp_path / "out"), lengths, None)
        grid = tmp_path / f"{task}.yaml"
        grid.write_text(yaml.safe_dump(spec))
        for cell in expand(load_grid(str(grid))):
            cfg = RunConfig(**cell_options(spec["base"], cell))
            assert cfg.max_length == 448 and cfg.selection_seed == cfg.seed
            total += 1
        assert spec["base"]["eval_data"][0].endswith(("eval_first64.jsonl", "eval_first100.jsonl"))
    assert total == cells


def test_verdicts_count_what_each_method_kept_of_a_pool(tmp_path):
    import yaml

    verdicts = load_script("suite_verdicts")
    task = tmp_path / "suite" / "x_filler50"
    data = tmp_path / "pool.jsonl"
    roles = ["clean", "filler"] * 4 + ["filler"] * 4  # rows 8..11 are past max_train_examples
    write_jsonl(data, [{"question": "q", "answer": "a", "pool": r} for r in roles])
    (task / "cells" / "c1").mkdir(parents=True)
    base = {"data": [str(data)], "max_train_examples": 8}
    (task / "grid.yaml").write_text(yaml.safe_dump({"base": base}))
    # One window of rows 0..7 (half filler), the slap run kept 0, 2, 4 and 1 (one filler).
    log = {"step": 0, "seen_ids": list(range(8)), "kept_ids": [0, 2, 4, 1]}
    (task / "cells" / "c1" / "selection.jsonl").write_text(json.dumps(log) + "\n")
    rows = [
        {"cell_id": "c0", "cell": {"method": "full", "seed": 0}, "eval_loss": 1.0},
        {
            "cell_id": "c1",
            "cell": {"method": "slap", "keep_ratio": 0.5, "seed": 0},
            "eval_loss": 1.0,
        },
    ]
    assert verdicts.pool_roles(str(task)) == roles[:8]
    table = verdicts.kept_roles(str(tmp_path / "suite"), {"x_filler50": rows})
    assert "| x_filler50 | slap | 0.5 | filler | 0.500 | 0.250 |" in table


def test_verdicts_pair_each_method_with_the_nearest_compute_and_the_same_scoring():
    verdicts = load_script("suite_verdicts")

    def row(method, keep, seed, loss, flops, scoring=None):
        cell = {"method": method, "seed": seed}
        if keep != 1.0:
            cell["keep_ratio"] = keep
        if scoring:
            cell["scoring"] = scoring
        return {"cell": cell, "eval_loss": loss, "flops_total": flops}

    rows = []
    for s in (0, 1, 2):
        rows += [
            row("full", 1.0, s, 2.0, 100.0),
            row("random", 0.7, s, 2.10, 69.0),
            row("random", 0.875, s, 2.05 + 0.001 * s, 87.5),
            row("slap", 0.7, s, 2.04 - 0.001 * s, 88.0, "reuse"),  # 0.88 of full: random 0.875
            row("hard", 0.7, s, 2.06, 84.0, "reuse"),
            row("slap", 0.7, s, 2.08, 112.0),  # fresh, above full's compute: full is its partner
        ]
    table = "\n".join(verdicts.claim_matched_random({"t": rows}))
    assert "| t | slap reuse | 0.7 | 0.880 | random 0.875 (0.875) | -0.6% ± " in table
    assert "| t | slap | 0.7 | 1.120 | full 1 (1.000) | +4.0% ± 0.0* |" in table
    same = "\n".join(verdicts.claim_same_mode({"t": rows}, [0.7]))
    # Reuse is compared with reuse only; no fresh hard run exists, so that column is left out.
    assert same.splitlines()[0] == "| task | keep | slap reuse − hard reuse |"
    assert "| t | 0.7 | -1.0% ± " in same
