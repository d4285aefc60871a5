"""DeepSpeed ZeRO 1-3 on 2 gloo ranks: same selections as DDP, Adam state read through
DeepSpeed. Slow and optional: DeepSpeed is not in the default install
(``pip install --no-build-isolation deepspeed``); run with ``pytest -m slow``."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.integrations.test_distributed import free_port

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_train.py")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.distributed,
    pytest.mark.skipif(
        importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed"
    ),
]


def run(out, stage=None):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "SLAPTUNE_TEST_ZERO": "" if stage is None else str(stage),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        SCRIPT,
        str(out),
        "slap",
        "4",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.load(open(out / f"rank{r}.json")) for r in range(2)]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stages_select_like_ddp(tmp_path, stage):
    ddp = run(tmp_path / "ddp")
    zero = run(tmp_path / f"zero{stage}", stage)
    ids = [r["kept_ids"] for r in ddp[0]["records"]]
    assert [r["kept_ids"] for r in zero[0]["records"]] == ids
    assert [r["kept_ids"] for r in zero[1]["records"]] == ids
    # From the second step on, the Adam state is read through DeepSpeed's partitioned state.
    assert zero[0]["records"][1]["features"].startswith("adam")
    assert zero[0]["train_loss"] == pytest.approx(ddp[0]["train_loss"], rel=1e-4)
