"""DeepSpeed ZeRO 1-3 on 2 gloo ranks: same selections as DDP, Adam state read through
DeepSpeed. Slow and optional: DeepSpeed is not in the default install
(``pip install --no-build-isolation deepspeed``); run with ``pytest -m slow``."""

import importlib.util

import pytest

from tests.integrations.ranks import run_ranks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.distributed,
    pytest.mark.skipif(
        importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed"
    ),
]


def run(out, stage=None):
    return run_ranks(out, "slap", 2, {"SLAPTUNE_TEST_ZERO": "" if stage is None else str(stage)})


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
