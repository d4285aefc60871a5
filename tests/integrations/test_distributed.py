"""Two gloo processes on the CPU: global selection is identical on every rank and equals a
single process with the same global batch."""

import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_train.py")
pytestmark = pytest.mark.distributed


def free_port() -> int:
    """A port nothing listens on now (fixed ports collide with leftovers of earlier runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args: str, nproc: int = 2, extra_env: dict | None = None) -> None:
    """Run ``args`` (a script path or ``-m module ...``) on ``nproc`` gloo CPU ranks."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        **(extra_env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(free_port()),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


def run(out, method, nproc, extra_env=None):
    """ddp_train.py on ``nproc`` ranks (4 rows each) or alone (8 rows): the same global batch."""
    if nproc == 1:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(
            [sys.executable, SCRIPT, str(out), method, "8"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    else:
        torchrun(SCRIPT, str(out), method, "4", nproc=nproc, extra_env=extra_env)
    return [json.load(open(out / f"rank{r}.json")) for r in range(nproc)]


@pytest.mark.parametrize("method", ["slap", "hard"])
def test_two_ranks_select_identically_and_match_one_process(tmp_path, method):
    ranks = run(tmp_path / "ddp", method, 2)
    single = run(tmp_path / "one", method, 1)[0]
    a, b = ranks
    assert [r["kept_ids"] for r in a["records"]] == [r["kept_ids"] for r in b["records"]]
    assert all(r["seen"] == 16 and r["kept"] == 8 for r in a["records"])
    if method == "slap":  # the selector was built before the optimizer and still finds it
        assert [r["features"].split(":")[0] for r in a["records"]] == ["identity", "adam", "adam"]
    # The same global pool (as a set) reaches both set-ups each step.
    if method == "hard":  # loss-only and order-free: the same rows are kept, the same loss results
        assert [sorted(r["kept_ids"]) for r in a["records"]] == [
            sorted(r["kept_ids"]) for r in single["records"]
        ]
        assert a["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)
        assert a["weights_norm"] == pytest.approx(single["weights_norm"], rel=1e-5)


def test_plain_api_under_accelerate_selects_identically_on_both_ranks(tmp_path):
    torchrun(os.path.join(os.path.dirname(__file__), "accelerate_loop.py"), str(tmp_path))
    a, b = (json.load(open(tmp_path / f"acc{r}.json")) for r in range(2))
    assert a["kept"] == b["kept"] and all(len(k) == 8 for k in a["kept"])
    assert all(x == x for x in a["losses"] + b["losses"])  # finite, not NaN


def test_torchrun_dash_m_slaptune_train(tmp_path):
    from tests.cli.test_commands import TINY, qa_records, write_jsonl

    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(48))
    out = tmp_path / "run"
    torchrun(
        "-m",
        "slaptune",
        "train",
        "--data",
        data,
        "--output-dir",
        str(out),
        "--keep-ratio",
        "0.5",
        *TINY,
        "--batch-size",
        "2",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    # 2 ranks x 2 rows x 2 accumulation = 8 candidates per window, 4 kept.
    assert metrics["samples_trained"] * 2 == metrics["samples_seen"]
    first = json.loads((out / "selection.jsonl").read_text().splitlines()[0])
    assert first["seen"] == 8 and first["kept"] == 4
