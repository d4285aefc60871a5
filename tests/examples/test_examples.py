"""Every script in examples/ runs as a user runs it (a subprocess, from another folder) and
prints what it promises: the kept share and the compute books."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, cwd) -> tuple[str, dict]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # the checkout, installed or not
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    compute = [ln for ln in lines if ln.startswith("compute: ")]
    assert len(compute) == 1, proc.stdout[-2000:]
    return proc.stdout, json.loads(compute[0].removeprefix("compute: "))


def check_books(summary: dict, seen: int) -> None:
    assert summary["samples_seen"] == seen
    assert summary["tokens_trained"] < summary["tokens_seen"]
    assert summary["flops_training"] > 0 and summary["flops_scoring"] > 0
    assert summary["cpu_s"] > 0 and summary["wall_s"] > 0


@pytest.mark.parametrize("name", ["plain_pytorch.py", "accelerate_loop.py"])
def test_own_loop_examples_keep_the_budget_of_every_batch(name, tmp_path):
    out, summary = run_example(name, "--steps", "4", cwd=tmp_path)
    check_books(summary, seen=64)
    assert summary["samples_trained"] == 4 * 11  # round(0.7 * 16) of each batch
    assert "kept 44 of 64 candidates" in out


def test_hf_trainer_example_prunes_from_reused_scores_after_epoch_one(tmp_path):
    out, summary = run_example(
        "hf_trainer.py", "--steps", "6", "--output-dir", str(tmp_path / "out"), cwd=tmp_path
    )
    check_books(summary, seen=96)
    log = [json.loads(ln) for ln in (tmp_path / "out" / "selection.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 0, 0, 0, 1, 1]
    assert all(r["kept"] == r["seen"] == 16 for r in log[:4])  # nothing scored yet: all kept
    assert all(r["scoring"] == "reuse" and r["kept"] < 16 for r in log[4:])
    assert summary["samples_trained"] == 64 + sum(r["kept"] for r in log[4:])
    assert summary["scoring_forwards"] == 0  # reuse: no extra forward


def test_trl_lora_example_selects_on_lora_features(tmp_path):
    out, summary = run_example("trl_lora.py", "--steps", "3", cwd=tmp_path)
    check_books(summary, seen=48)
    assert "gradient features at the last step: lora/adam" in out
    assert summary["trainable_params"] < summary["params"] / 2  # LoRA: base frozen
    assert summary["samples_trained"] < summary["samples_seen"]
