"""Launch helpers for the multi-process tests (gloo on the CPU)."""

import json
import os
import socket
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_train.py")


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


def run_ranks(out, method, nproc, extra_env=None):
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
