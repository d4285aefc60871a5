"""SlapSFTTrainer gradients, refusal of packed batches, and exact resume."""

import pytest
import torch

from tests.integrations.helpers import (
    grads_at_first_step,
    make_trainer,
    read_log,
    reference_grads,
    relative_error,
    snapshot,
    token_dataset,
    train_args,
)


def sft_dataset(n=32, seed=0):
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    words = ["red", "blue", "cat", "dog", "runs", "sleeps", "big", "small", "the", "a"]
    rows = []
    for _ in range(n):
        pick = torch.randint(0, len(words), (6,), generator=g).tolist()
        rows.append(
            {
                "prompt": " ".join(words[i] for i in pick[:3]) + "?",
                "completion": " " + " ".join(words[i] for i in pick[3:]),
            }
        )
    return Dataset.from_list(rows)


def sft_trainer(tmp_path, tokenizer, model, lora=False, **kw):
    from slaptune.integrations.trl import SlapSFTConfig, SlapSFTTrainer

    cfg = dict(
        output_dir=str(tmp_path),
        bf16=False,
        use_cpu=True,
        max_length=64,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        max_steps=1,
        report_to=[],
        learning_rate=1e-2,
        max_grad_norm=0.0,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        method="slap",
        keep_ratio=0.5,
    )
    cfg.update(kw)
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear")
    return SlapSFTTrainer(
        model=model,
        args=SlapSFTConfig(**cfg),
        train_dataset=sft_dataset(),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


@pytest.mark.parametrize("lora", [False, True])
def test_sft_first_step_gradient_is_token_mean_over_kept_rows(
    byte_tokenizer, tiny_model, tmp_path, lora
):
    model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer)).train()
    trainer = sft_trainer(tmp_path, byte_tokenizer, model, lora=lora)
    initial = snapshot(trainer.model)
    got = grads_at_first_step(trainer)
    rec = read_log(tmp_path / "selection.jsonl")[0]
    assert rec["seen"] == 16 and rec["kept"] == 8
    ds = trainer.train_dataset
    rows = [{k: v for k, v in ds[i].items() if k != "slap_id"} for i in rec["kept_ids"]]
    batch = trainer.data_collator.inner(rows)
    batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
    assert relative_error(got, reference_grads(trainer.model, initial, batch)) < 1e-5


def test_packing_is_refused_with_a_clear_message(byte_tokenizer, tiny_model, tmp_path):
    model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer))
    with pytest.raises(ValueError, match="packing=True .* set packing=False"):
        sft_trainer(tmp_path, byte_tokenizer, model, packing=True)


def test_resume_gives_the_same_selections_and_weights(byte_tokenizer, tiny_model, tmp_path):
    ds = token_dataset(48, len(byte_tokenizer))

    def run(out, max_steps, resume=None, save=False):
        model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer)).train()
        args = train_args(
            out,
            max_steps=6,
            keep_ratio=0.5,
            scoring="reuse",
            save_strategy="steps" if save else "no",
            save_steps=3,
            lr_scheduler_type="constant",
        )
        trainer = make_trainer(model, args, ds, byte_tokenizer)
        if max_steps < 6:  # interrupt: stop after max_steps optimizer steps
            from transformers import TrainerCallback

            class Stop(TrainerCallback):
                def on_step_end(self, args, state, control, **kw):
                    if state.global_step >= max_steps:
                        control.should_training_stop = True
                    return control

            trainer.add_callback(Stop())
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full", 6)
    run(tmp_path / "cut", 3, save=True)
    resumed = run(tmp_path / "cut", 6, resume=True)
    a = read_log(tmp_path / "full" / "selection.jsonl")
    b = read_log(tmp_path / "cut" / "selection.jsonl")
    assert [r["kept_ids"] for r in a] == [r["kept_ids"] for r in b]
    assert any(r["kept"] < r["seen"] for r in a[3:])  # epoch 2 prunes from recorded scores
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)


# ---- LoRA features and the Trainer log (issue 13) ----------------------------------------------


def test_lora_switches_to_lora_features_and_says_so_once(
    byte_tokenizer, tiny_model, tmp_path, capsys, recwarn
):
    model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer)).train()
    trainer = sft_trainer(tmp_path, byte_tokenizer, model, lora=True, max_steps=3)
    trainer.train()
    err = capsys.readouterr().err
    assert err.count("feature_source='lora'") == 1
    records = read_log(tmp_path / "selection.jsonl")
    assert all(r["features"].startswith("lora/") for r in records)
    assert records[-1]["features"] == "lora/adam"  # preconditioned once Adam has state
    assert not [w for w in recwarn if "identity" in str(w.message)]


def test_frozen_head_without_lora_warns_on_the_console(byte_tokenizer, tiny_model, tmp_path):
    model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer)).train()
    model.get_output_embeddings().weight.requires_grad_(False)
    args = train_args(tmp_path, max_steps=1, keep_ratio=0.5)
    trainer = make_trainer(model, args, token_dataset(16, len(byte_tokenizer)), byte_tokenizer)
    with pytest.warns(UserWarning, match="output layer is frozen.*identity"):
        trainer.train()


def test_identity_features_after_the_first_steps_warn_once(byte_tokenizer, tiny_model, tmp_path):
    from slaptune.config import SelectionConfig
    from slaptune.integrations.features import FallbackWarner

    warner = FallbackWarner(SelectionConfig())
    warner.check("identity: no optimizer state yet (before the first step)", 0)  # expected
    with pytest.warns(UserWarning, match="at step 2"):
        warner.check("identity: no DeepSpeed optimizer state yet", 2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warner.check("identity: no DeepSpeed optimizer state yet", 3)  # once only


def test_trainer_logs_carry_samples_tokens_and_flops(byte_tokenizer, tiny_model, tmp_path):
    """What report_to (TensorBoard, W&B) receives at each logging step."""
    from transformers import TrainerCallback

    logged = []

    class Spy(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            logged.append(dict(logs or {}))

    model = tiny_model("llama-tiny", vocab_size=len(byte_tokenizer)).train()
    args = train_args(tmp_path, max_steps=2, keep_ratio=0.5)
    trainer = make_trainer(model, args, token_dataset(32, len(byte_tokenizer)), byte_tokenizer)
    trainer.add_callback(Spy())
    trainer.train()
    steps = [x for x in logged if "loss" in x]
    assert [x["slap_samples_seen"] for x in steps] == [16, 32]
    assert [x["slap_samples_trained"] for x in steps] == [8, 16]
    ledger = trainer.slap_engine.ledger
    last = steps[-1]
    assert last["slap_tokens_seen"] == ledger.tokens_seen
    assert last["slap_tokens_trained"] == ledger.tokens_trained
    assert last["slap_flops_scoring"] == ledger.flops_scoring > 0
    assert last["slap_flops_training"] == ledger.flops_training > 0
    assert last["slap_kept_share"] == 0.5
