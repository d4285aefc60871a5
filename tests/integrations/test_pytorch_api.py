"""The plain-PyTorch SlapSelector: exact loss over kept rows, reuse bookkeeping, clear errors."""

import pytest
import torch

from slaptune import SelectionConfig
from slaptune.integrations.pytorch import SlapSelector
from slaptune.models.presets import build_model
from tests.conftest import prompt_completion_batch


def make_batch(b=8, seed=0, ids=None):
    input_ids, labels = prompt_completion_batch(b, 12, 64, seed)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    if ids is not None:
        batch["slap_id"] = ids
    return batch


def test_loss_is_token_mean_over_kept_rows():
    model = build_model("llama-tiny", 64)
    selector = SlapSelector(model, None, SelectionConfig(method="hard", keep_ratio=0.5))
    batch = make_batch()
    sub = selector.select(batch, step=0)
    assert sub["input_ids"].shape[0] == 4
    kept = sub["slap_id"]
    ref = model(input_ids=batch["input_ids"][kept], labels=batch["labels"][kept]).loss
    torch.testing.assert_close(selector.loss(model, sub), ref, rtol=1e-6, atol=1e-6)
    rec = selector.engine.last_record
    assert rec["kept_ids"] == kept.tolist() and rec["loss_kept"] >= rec["loss_window"]


def test_reuse_mode_records_scores_and_prunes_the_second_time():
    model = build_model("llama-tiny", 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    selector = SlapSelector(
        model, opt, SelectionConfig(keep_ratio=0.5, scoring="reuse"), dataset_size=8
    )
    batch = make_batch(ids=torch.arange(8))
    for epoch, expected in ((0, 8), (1, 4)):
        sub = selector.select(batch, step=epoch, epoch=epoch)
        assert sub["input_ids"].shape[0] == expected
        loss = selector.loss(model, sub)
        if epoch == 0:  # the recorded scores are the rows' losses in this very forward
            from slaptune.score import example_losses

            with torch.no_grad():
                ref, _ = example_losses(model(input_ids=sub["input_ids"]).logits, sub["labels"])
            selector.engine.scorer.flush_pending(epoch)
            torch.testing.assert_close(selector.engine.table.losses[sub["slap_id"]], ref)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert selector.ledger.scoring_forwards == 0
    assert selector.ledger.samples_trained == 12 and selector.ledger.samples_seen == 16


def test_reuse_without_ids_is_a_clear_error():
    model = build_model("llama-tiny", 64)
    selector = SlapSelector(model, None, SelectionConfig(scoring="reuse"), dataset_size=8)
    with pytest.raises(ValueError, match="with_example_ids"):
        selector.select(make_batch(), step=0)


def test_reuse_without_dataset_size_is_a_clear_error():
    with pytest.raises(ValueError, match="dataset_size"):
        SlapSelector(build_model("llama-tiny", 64), None, SelectionConfig(scoring="reuse"))


def test_reuse_sample_policy_prunes_the_first_epoch_too():
    model = build_model("llama-tiny", 64)
    cfg = SelectionConfig(keep_ratio=0.5, scoring="reuse", reuse_unscored="sample")
    selector = SlapSelector(model, None, cfg, dataset_size=16)
    first = selector.select(make_batch(16, ids=torch.arange(16)), step=0, epoch=0)
    assert first["input_ids"].shape[0] == 8
    selector.loss(model, first)
    second = selector.select(make_batch(16, ids=torch.arange(16)), step=1, epoch=1)
    assert second["input_ids"].shape[0] == 8  # 8 scored compete with 8 still unscored
    assert selector.ledger.scoring_forwards == 0
