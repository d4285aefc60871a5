"""Eval curves at shares of full-data FLOPs, and loss by difficulty third, on real training."""

import pytest

from slaptune.pipeline.bench import CurveSetup
from slaptune.pipeline.eval_curve import pooled_loss, tercile_groups
from slaptune.pipeline.evaluate import heldout_loss, per_example_losses
from slaptune.pipeline.run_config import RunConfig
from slaptune.pipeline.train import run_training
from tests.shared import qa_records, write_jsonl


def test_per_example_losses_pool_to_the_heldout_loss(tiny_model, byte_tokenizer):
    import torch

    g = torch.Generator().manual_seed(0)
    rows = []
    for n in (5, 9, 14, 7, 11):
        ids = torch.randint(3, 64, (n,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * 2 + ids[2:]})
    model = tiny_model()
    sums, counts = per_example_losses(model, rows, batch_size=2)
    assert counts == [n - 2 for n in (5, 9, 14, 7, 11)]  # 2 prompt tokens unsupervised
    whole = pooled_loss(sums, counts, list(range(5)))
    assert whole == pytest.approx(heldout_loss(model, byte_tokenizer, rows)["eval_loss"], abs=1e-4)


def test_terciles_split_by_loss_and_cover_every_example():
    groups = tercile_groups([5.0, 1.0, 3.0, 2.0, 4.0, 0.5, 6.0])
    assert groups == [[5, 1], [3, 2], [4, 0, 6]]
    assert sorted(i for g in groups for i in g) == list(range(7))


def run(tmp_path, method, keep):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(48))
    cfg = RunConfig(
        model="llama-tiny",
        data=[data],
        data_format="qa",
        epochs=2,
        batch_size=4,
        eval_size=9,
        eval_generate=0,
        tokenizer_vocab=300,
        max_length=64,
        method=method,
        keep_ratio=keep,
        output_dir=str(tmp_path / f"run-{method}"),
        progress=False,
    )
    hook = CurveSetup(cfg, str(tmp_path), every=0.1)
    metrics = run_training(cfg, setup=hook)
    return metrics, hook.results()


def test_curve_follows_full_data_flops_and_ends_at_the_final_model(tmp_path):
    metrics, res = run(tmp_path, "full", 1.0)
    curve = res["eval_curve"]
    fractions = [p["flops_fraction"] for p in curve]
    assert fractions[0] == 0.0 and fractions == sorted(fractions)
    # The analytic full-data FLOPs are what the full run spends: its curve ends at 1.
    assert fractions[-1] == pytest.approx(1.0, abs=1e-3)
    assert res["full_flops_reference"] == pytest.approx(metrics["flops_total"], rel=1e-3)
    # A point at (about) every 10% of the budget, each just past its target.
    targets = [p["target"] for p in curve[1:]]
    assert targets == pytest.approx([0.1 * k for k in range(1, 11)])
    assert all(0 <= p["flops_fraction"] - p["target"] < 0.1 for p in curve[1:])
    assert res["final"]["eval_loss"] == pytest.approx(metrics["eval_loss"], abs=1e-3)
    assert res["eval_loss_best"] == min(p["eval_loss"] for p in curve)
    thirds = res["eval_loss_terciles"]
    assert set(thirds) == {"easy", "middle", "hard"}
    # At point 0 (the base model, which fixed the thirds) easy < middle < hard by construction.
    base = curve[0]["terciles"]
    assert base["easy"] <= base["middle"] <= base["hard"]
    assert res["truncated_share_train"] == 0.0 and res["max_length"] == 64


def test_pruned_run_is_measured_against_the_full_data_budget(tmp_path):
    _, res = run(tmp_path, "random", 0.5)
    assert res["final"]["flops_fraction"] == pytest.approx(0.5, abs=0.05)
    assert [p["target"] for p in res["eval_curve"][1:-1]] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_final_eval_and_base_point_are_not_measured_twice(tmp_path, monkeypatch):
    """The run's final eval loss is the curve's last point (same weights, same rows), and the
    base model's losses (point 0) are measured once per seed and task, then read back."""
    import json

    from slaptune.pipeline import evaluate

    metrics, res = run(tmp_path, "random", 0.5)
    assert metrics["eval_loss"] == pytest.approx(res["final"]["eval_loss"], abs=1e-4)
    (cache,) = tmp_path.glob("base_terciles_*.json")
    stored = json.loads(cache.read_text())
    assert set(stored) >= {"terciles", "base_losses"} and list(stored["base_losses"]) == ["0"]

    calls = []
    real = evaluate.per_example_losses

    def counting(*a, **k):
        calls.append("eval")
        return real(*a, **k)

    monkeypatch.setattr(evaluate, "per_example_losses", counting)
    monkeypatch.setattr(evaluate, "heldout_loss", lambda *a, **k: pytest.fail("re-evaluated"))
    import slaptune.pipeline.eval_curve as eval_curve

    monkeypatch.setattr(eval_curve, "per_example_losses", counting)
    _, again = run(tmp_path, "full", 1.0)
    # Point 0 came from the cache (the same losses), the curve's targets each cost one pass.
    assert again["eval_curve"][0] == res["eval_curve"][0]
    assert len(calls) == len(again["eval_curve"]) - 1
