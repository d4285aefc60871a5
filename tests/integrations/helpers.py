"""Tiny data and trainers shared by the integration tests (CPU, fp32, 1 thread-friendly)."""

from __future__ import annotations

import json

import torch


def token_rows(n=32, vocab=64, seed=0, prompt=4):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(8, 18, (1,), generator=g))
        ids = torch.randint(3, vocab, (length,), generator=g).tolist()
        rows.append(
            {
                "input_ids": ids,
                "attention_mask": [1] * length,
                "labels": [-100] * prompt + ids[prompt:],
            }
        )
    return rows


def token_dataset(n=32, vocab=64, seed=0):
    from datasets import Dataset

    return Dataset.from_list(token_rows(n, vocab, seed))


def collator(tokenizer):
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)


def train_args(out, **kw):
    from slaptune.integrations.hf import SlapTrainingArguments

    base = dict(
        output_dir=str(out),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        num_train_epochs=1,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-2,
        max_grad_norm=0.0,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    base.update(kw)
    return SlapTrainingArguments(**base)


def make_trainer(model, args, dataset, tokenizer):
    from slaptune.integrations.hf import SlapTrainer

    return SlapTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator(tokenizer),
        processing_class=tokenizer,
    )


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def grads_at_first_step(trainer):
    """Run training and return the accumulated gradients at the first optimizer step."""
    from transformers import TrainerCallback

    captured = {}

    class Grab(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            if not captured:
                for name, p in trainer.model.named_parameters():
                    if p.requires_grad and p.grad is not None:
                        captured[name] = p.grad.detach().clone()

    trainer.add_callback(Grab())
    trainer.train()
    return captured


def snapshot(model) -> dict:
    """Detached copies of the trainable parameters, to evaluate the model at these values later
    (``torch.func.functional_call``; a deepcopy would not do for TRL, whose patched forward stays
    bound to the original module)."""
    return {
        n: p.detach().clone().requires_grad_(True)
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def reference_grads(model, params: dict, batch, weights=None):
    """Gradient of the plain token-mean loss over ``batch`` at ``params``. Evaluated in eval mode:
    the tiny models have no dropout, and activation checkpointing (TRL's default) would otherwise
    recompute the forward in backward with the module's current, not these, parameters."""
    model.eval()
    logits = torch.func.functional_call(
        model,
        params,
        args=(),
        kwargs={"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
    ).logits
    labels = batch["labels"][:, 1:]
    tok = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), labels, reduction="none"
    )
    rows = tok.sum(1) if weights is None else tok.sum(1) * weights
    loss = rows.sum() / (labels != -100).sum()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {n: g for n, g in zip(params, grads) if g is not None}


def relative_error(a: dict, b: dict) -> float:
    assert set(a) == set(b), set(a) ^ set(b)
    num = sum(((a[k] - b[k]) ** 2).sum() for k in a) ** 0.5
    den = sum((b[k] ** 2).sum() for k in b) ** 0.5
    return float(num / den)
