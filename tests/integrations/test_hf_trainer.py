"""SlapTrainer / SlapSFTTrainer: exact gradients, keep-all equivalence, reuse, InfoBatch, resume."""

import pytest
import torch
from transformers import Trainer, TrainingArguments

from slaptune.integrations.hf import SlapTrainer
from slaptune.select import method_names
from tests.integrations.helpers import (
    collator,
    grads_at_first_step,
    make_trainer,
    read_log,
    reference_grads,
    relative_error,
    snapshot,
    token_dataset,
    train_args,
)


@pytest.fixture
def setup(byte_tokenizer, tiny_model):
    def make(lora=False, seed=0):
        model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer), seed=seed).train()
        if lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear")
            )
        return model

    return make


def kept_batch(trainer, ds, ids):
    rows = [{k: ds[i][k] for k in ("input_ids", "attention_mask", "labels")} for i in ids]
    return trainer.data_collator.inner(rows)


@pytest.mark.parametrize("ga, bs", [(2, 8), (4, 4)])
@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("method", ["slap", "hard"])
def test_first_step_gradient_is_token_mean_over_kept_rows(
    setup, byte_tokenizer, tmp_path, ga, bs, lora, method
):
    model = setup(lora)
    initial = snapshot(model)
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(
        tmp_path,
        gradient_accumulation_steps=ga,
        per_device_train_batch_size=bs,
        max_steps=1,
        method=method,
        keep_ratio=0.5,
    )
    trainer = make_trainer(model, args, ds, byte_tokenizer)
    got = grads_at_first_step(trainer)
    log = read_log(tmp_path / "selection.jsonl")
    assert log[0]["seen"] == ga * bs and log[0]["kept"] == ga * bs // 2
    ref = reference_grads(trainer.model, initial, kept_batch(trainer, ds, log[0]["kept_ids"]))
    assert relative_error(got, ref) < 1e-5


def test_keep_ratio_one_reproduces_plain_trainer_bit_for_bit(setup, byte_tokenizer, tmp_path):
    ds = token_dataset(48, len(byte_tokenizer))
    common = dict(
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        max_steps=3,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-2,
        seed=0,
        disable_tqdm=True,
    )
    plain = Trainer(
        model=setup(),
        args=TrainingArguments(output_dir=str(tmp_path / "a"), **common),
        train_dataset=ds,
        data_collator=collator(byte_tokenizer),
    )
    plain.train()
    slap = SlapTrainer(
        model=setup(),
        args=train_args(
            tmp_path / "b",
            keep_ratio=1.0,
            **{k: v for k, v in common.items() if k not in ("use_cpu", "report_to")},
        ),
        train_dataset=ds,
        data_collator=collator(byte_tokenizer),
        processing_class=byte_tokenizer,
    )
    slap.train()
    losses = [h["loss"] for h in plain.state.log_history if "loss" in h]
    assert losses == [h["loss"] for h in slap.state.log_history if "loss" in h]
    for p, q in zip(plain.model.parameters(), slap.model.parameters()):
        assert torch.equal(p, q)


def count_forwards(model):
    calls = {"n": 0}
    model.register_forward_pre_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    return calls


@pytest.mark.parametrize("scoring, extra", [("fresh", 2), ("reuse", 0)])
def test_reuse_mode_makes_no_extra_forward(setup, byte_tokenizer, tmp_path, scoring, extra):
    model = setup()
    calls = count_forwards(model)
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(tmp_path, num_train_epochs=2, keep_ratio=0.5, scoring=scoring)
    trainer = make_trainer(model, args, ds, byte_tokenizer)
    trainer.train()
    windows = 4  # 32 examples / (8 x 2) = 2 windows per epoch, 2 epochs
    assert calls["n"] == windows * 2 + windows * extra  # 2 training micro-batches per window
    log = read_log(tmp_path / "selection.jsonl")
    if scoring == "reuse":
        # Policy: never-scored examples are kept, so epoch 1 trains on everything; epoch 2 prunes.
        assert [r["kept"] for r in log] == [16, 16, 8, 8]
        assert trainer.slap_engine.ledger.scoring_forwards == 0
    else:
        assert [r["kept"] for r in log] == [8, 8, 8, 8]


def test_infobatch_schedule_prunes_nothing_after_delta(setup, byte_tokenizer, tmp_path):
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(
        tmp_path,
        num_train_epochs=4,
        method="infobatch",
        scoring="reuse",
        keep_ratio=0.5,
        anneal_after=0.75,
    )
    trainer = make_trainer(setup(), args, ds, byte_tokenizer)
    trainer.train()
    log = read_log(tmp_path / "selection.jsonl")
    max_steps = trainer.state.max_steps
    for rec in log:
        if rec["step"] / max_steps >= 0.75:
            assert rec["kept"] == rec["seen"]
    assert any(r["kept"] < r["seen"] for r in log)  # it did prune before delta


def test_infobatch_weights_enter_the_gradient(setup, byte_tokenizer, tmp_path):
    model = setup()
    initial = snapshot(model)
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(tmp_path, max_steps=1, method="infobatch", keep_ratio=0.5)
    trainer = make_trainer(model, args, ds, byte_tokenizer)
    got = grads_at_first_step(trainer)
    rec = read_log(tmp_path / "selection.jsonl")[0]
    batch = kept_batch(trainer, ds, rec["kept_ids"])
    labels = batch["labels"][:, 1:]
    with torch.no_grad():
        logits = torch.func.functional_call(
            trainer.model,
            initial,
            args=(),
            kwargs={"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
        ).logits
    tok = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), labels, reduction="none"
    )
    counts = (labels != -100).sum(1)
    row_loss = tok.sum(1) / counts
    low_kept = row_loss < rec["threshold"]
    high_kept = ~low_kept
    w_low = (low_kept.sum() + rec["pruned_low"]) / low_kept.sum()
    w_high = (high_kept.sum() + rec["pruned_high"]) / high_kept.sum()
    weights = torch.where(low_kept, w_low, w_high)
    assert rec["pruned_low"] + rec["pruned_high"] == 8 and (weights > 1).any()
    ref = reference_grads(trainer.model, initial, batch, weights)
    assert relative_error(got, ref) < 1e-5
    # ... and differs from the unweighted token mean.
    assert relative_error(got, reference_grads(trainer.model, initial, batch)) > 1e-4


def test_lora_feature_source_trains_exactly(setup, byte_tokenizer, tmp_path):
    model = setup(lora=True)
    initial = snapshot(model)
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(
        tmp_path,
        max_steps=2,
        keep_ratio=0.5,
        feature_source="lora",
        sketch_vocab=16,
        lora_modules=2,
    )
    trainer = make_trainer(model, args, ds, byte_tokenizer)
    got = grads_at_first_step(trainer)
    log = read_log(tmp_path / "selection.jsonl")
    assert [r["features"].split(":")[0] for r in log] == ["lora/identity", "lora/adam"]
    ref = reference_grads(trainer.model, initial, kept_batch(trainer, ds, log[0]["kept_ids"]))
    assert relative_error(got, ref) < 1e-5


@pytest.mark.parametrize("method", sorted(method_names()))
def test_every_method_trains_by_name(setup, byte_tokenizer, tmp_path, method):
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(tmp_path, max_steps=2, method=method, keep_ratio=0.5)
    trainer = make_trainer(setup(), args, ds, byte_tokenizer)
    trainer.train()
    log = read_log(tmp_path / "selection.jsonl")
    expected = 16 if method == "full" else 8
    assert [r["kept"] for r in log] == [expected, expected]
    assert trainer.slap_engine.ledger.samples_trained == 2 * expected


def test_infobatch_reuse_refreshes_its_scores_every_epoch(setup, byte_tokenizer, tmp_path):
    """The weighted-loss path records its rows' scores too (it used to skip them, so the
    threshold stayed at epoch 1's for the rest of training)."""
    ds = token_dataset(32, len(byte_tokenizer))
    args = train_args(
        tmp_path, num_train_epochs=3, method="infobatch", scoring="reuse", keep_ratio=0.5
    )
    trainer = make_trainer(setup(), args, ds, byte_tokenizer)
    trainer.train()
    engine = trainer.slap_engine
    engine.scorer.flush_pending(2)
    kept_last_epoch = {
        i for r in read_log(tmp_path / "selection.jsonl") if r["epoch"] == 2 for i in r["kept_ids"]
    }
    assert kept_last_epoch and all(int(engine.table.epoch[i]) == 2 for i in kept_last_epoch)


def test_pool_windows_keeps_the_step_count_and_selects_per_pool(setup, byte_tokenizer, tmp_path):
    ds = token_dataset(64, len(byte_tokenizer))
    args = train_args(tmp_path, method="slap", keep_ratio=0.5, pool_windows=2)
    trainer = make_trainer(setup(), args, ds, byte_tokenizer)
    trainer.train()
    assert trainer.state.global_step == 4  # 64 rows / (8 x 2) per step, pools or not
    log = read_log(tmp_path / "selection.jsonl")
    assert [r["step"] for r in log] == [0, 2]
    assert all(r["seen"] == 32 and r["kept"] == 16 and r["pool_windows"] == 2 for r in log)
    assert trainer.slap_engine.ledger.samples_trained == 32


def test_the_run_seed_reaches_selection(setup, byte_tokenizer, tmp_path):
    ds = token_dataset(32, len(byte_tokenizer))
    kept = []
    for seed in (0, 1):
        args = train_args(
            tmp_path / str(seed), method="random", keep_ratio=0.5, data_seed=0, seed=seed
        )
        trainer = make_trainer(setup(), args, ds, byte_tokenizer)
        trainer.train()
        assert trainer.slap_engine.seed == seed
        kept.append([r["kept_ids"] for r in read_log(tmp_path / str(seed) / "selection.jsonl")])
    assert kept[0] != kept[1]


def test_a_registered_toy_method_trains_through_slaptrainer(setup, byte_tokenizer, tmp_path):
    """One function and one @register line: the trainer runs it with no other change."""
    from slaptune.select import Selection, register, unregister

    @register("first_half", uses_losses=False)
    def first_half(losses, features, budget, generator) -> Selection:
        return Selection(torch.arange(budget))

    try:
        ds = token_dataset(32, len(byte_tokenizer))
        args = train_args(tmp_path, method="first_half", keep_ratio=0.5)
        trainer = make_trainer(setup(), args, ds, byte_tokenizer)
        trainer.train()
        for rec in read_log(tmp_path / "selection.jsonl"):
            assert sorted(rec["kept_ids"]) == sorted(rec["seen_ids"])[: rec["kept"]]  # lowest ids
        assert trainer.slap_engine.ledger.scoring_forwards == 0
    finally:
        unregister("first_half")
