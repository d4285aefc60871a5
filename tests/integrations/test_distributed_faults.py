"""Distributed (issue 12, item 7): a settable process-group timeout and a message naming the
rank that hung; gradient-sketch FLOPs summed over ranks; one summary, from rank 0."""

import json
import os
import subprocess
import sys

import pytest

from tests.integrations.ranks import free_port

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_checks.py")
pytestmark = pytest.mark.distributed


def launch(*args, nproc=2, env=None, timeout=600):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        **(env or {}),
    }
    cmd = [sys.executable, SCRIPT, *args]
    if nproc > 1:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_port",
            str(free_port()),
            *cmd[1:],
        ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_timeout_defaults_to_ten_minutes_and_follows_the_environment(tmp_path, monkeypatch):
    from tests.integrations.helpers import train_args

    assert train_args(tmp_path).ddp_timeout == 600
    monkeypatch.setenv("SLAPTUNE_DIST_TIMEOUT_S", "42")
    assert train_args(tmp_path).ddp_timeout == 42
    assert train_args(tmp_path, ddp_timeout=77).ddp_timeout == 77  # explicit wins


def test_a_hung_rank_is_named_after_the_timeout(tmp_path):
    proc = launch("hang", str(tmp_path), env={"SLAPTUNE_DIST_TIMEOUT_S": "5"}, timeout=300)
    assert proc.returncode != 0
    assert "rank(s) 1 did not answer" in proc.stderr, proc.stderr[-3000:]
    assert "SLAPTUNE_DIST_TIMEOUT_S=5" in proc.stderr


def test_sketch_flops_are_summed_over_ranks_and_rank_0_alone_prints(tmp_path):
    two = launch("cli", str(tmp_path / "two"), "2")
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count('"samples_seen"') == 1  # one summary, not one per rank
    one = launch("cli", str(tmp_path / "one"), "4", nproc=1)
    assert one.returncode == 0, one.stderr[-3000:]
    r0, r1, single = (
        json.loads((tmp_path / d / f"ledger{r}.json").read_text())
        for d, r in (("two", 0), ("two", 1), ("one", 0))
    )
    metrics = json.loads((tmp_path / "two" / "run" / "metrics.json").read_text())
    assert r0["flops_scoring"] == r1["flops_scoring"] == metrics["flops_scoring"]
    # The same global windows (8 rows) as one process with twice the micro-batch.
    assert r0["flops_scoring"] == pytest.approx(single["flops_scoring"], rel=1e-9)
    assert r0["samples_seen"] == single["samples_seen"]
