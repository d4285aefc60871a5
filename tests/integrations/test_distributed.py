"""Two gloo processes on the CPU: global selection is identical on every rank and equals a
single process with the same global batch."""

import json
import os

import pytest

from tests.integrations.ranks import free_port, torchrun  # noqa: F401
from tests.integrations.ranks import run_ranks as run

pytestmark = pytest.mark.distributed


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
    from tests.shared import TINY, qa_records, write_jsonl

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
