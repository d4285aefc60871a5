"""kill -9 while checkpointing, then ``--resume``: the uninterrupted run's weights, counters and
selection log, or a one-line refusal (issue 12). ``fault_train.py`` kills ``slaptune train`` at a
chosen point of its N-th checkpoint save, or after a random delay; the full grid is slow."""

import json
import os
import subprocess
import sys

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(__file__), "fault_train.py")
sys.path.insert(0, os.path.dirname(__file__))
from fault_train import POINTS  # noqa: E402

COUNTERS = (
    "samples_seen",
    "samples_trained",
    "tokens_seen",
    "tokens_trained",
    "flops_scoring",
    "flops_training",
    "windows",
    "scoring_forwards",
)


def run_script(out, point="none", nth=0, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, SCRIPT, str(out), point, str(nth), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = run_script(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def lines(path):
    with open(path) as f:
        return [json.loads(x) for x in f]


def assert_same_run(out, ref):
    from safetensors.torch import load_file

    a, b = load_file(out / "model.safetensors"), load_file(ref / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, ref))
    assert {k: got[k] for k in COUNTERS} == {k: want[k] for k in COUNTERS}
    assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
    assert lines(out / "selection.jsonl") == lines(ref / "selection.jsonl")


def kill_and_resume(tmp_path, ref, point, nth) -> str:
    """'same' (resumed run = uninterrupted run), 'refused' (one-line error) or 'not killed'."""
    out = tmp_path / "run"
    killed = run_script(out, point, nth)
    if killed.returncode == 0:  # the random delay outlived the run
        assert_same_run(out, ref)
        return "not killed"
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run_script(out, "none", 0, "--resume")
    if resumed.returncode == 2:
        err = resumed.stderr.strip().splitlines()
        assert err[-1].startswith("slaptune: error: ") and "Traceback" not in resumed.stderr
        return "refused"
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(out, ref)
    return "same"


def test_kill_between_selection_state_and_trainer_files_resumes_exactly(tmp_path, uninterrupted):
    assert kill_and_resume(tmp_path, uninterrupted, "after_state", 3) == "same"


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 3, 5])
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_every_point_of_a_checkpoint(tmp_path, uninterrupted, point, nth):
    outcome = kill_and_resume(tmp_path, uninterrupted, point, nth)
    expected = "same"
    if nth == 1 and point not in LATE_POINTS:
        expected = "refused"  # nothing complete before the first checkpoint: one-line refusal
    if nth == 5 and point == "torn_log_line":
        expected = "not killed"  # the 5th checkpoint is the last: no line is written after it
    assert outcome == expected


# Points at which checkpoint N is already complete.
LATE_POINTS = ("before_rotate", "mid_rotate", "after_save", "torn_log_line")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_kill_after_a_random_delay(tmp_path, uninterrupted, seed):
    # 'not killed': the run ended before the delay did (its outputs were checked all the same).
    outcome = kill_and_resume(tmp_path, uninterrupted, "random", seed)
    assert outcome in ("same", "refused", "not killed")
