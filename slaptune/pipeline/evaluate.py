"""Held-out loss and perplexity, batched generation, and task metrics."""

from __future__ import annotations

import math

import torch

from ..data.formats import Example
from ..data.tokenize import prompt_text
from ..score.loss import IGNORE_INDEX, token_loss_sums
from .metrics import PRIMARY, task_scores


def _progress(iterable, enabled: bool, desc: str, total=None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def padded(rows: list[dict], pad_id: int):
    """``(input_ids, attention_mask, labels)`` of token rows, right-padded to the longest."""
    n = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([r["input_ids"] + [pad_id] * (n - len(r["input_ids"])) for r in rows])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [IGNORE_INDEX] * (n - len(r["labels"])) for r in rows])
    return ids, mask, labels


@torch.no_grad()
def per_example_losses(
    model, rows: list[dict], pad_id: int = 0, batch_size: int = 16, progress: bool = False
) -> tuple[list[float], list[int]]:
    """Summed next-token cross-entropy and supervised-token count of every row (in eval mode),
    so that the token mean over any subset can be formed."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums: list[float] = []
    counts: list[int] = []
    batches = range(0, len(rows), batch_size)
    try:
        for s in _progress(batches, progress, "eval loss", len(batches)):
            ids, mask, labels = padded(rows[s : s + batch_size], pad_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            per_row, _ = token_loss_sums(logits, labels.to(device))
            sums += per_row.cpu().tolist()
            counts += (labels[:, 1:] != IGNORE_INDEX).sum(1).tolist()
    finally:
        model.train(was_training)
    return sums, counts


def heldout_loss(
    model, tokenizer, rows: list[dict], batch_size: int = 16, progress: bool = False
) -> dict:
    """Token-mean cross-entropy over every supervised token of ``rows``, and its exp."""
    sums, counts = per_example_losses(
        model, rows, tokenizer.pad_token_id or 0, batch_size, progress
    )
    return heldout_from_sums(sums, counts)


def heldout_from_sums(sums: list[float], counts: list[int]) -> dict:
    """``eval_loss`` (token mean) and ``eval_perplexity`` from per-example loss sums and
    supervised-token counts.

    >>> heldout_from_sums([2.0, 4.0], [1, 2])
    {'eval_loss': 2.0, 'eval_perplexity': 7.389}
    """
    loss = sum(sums) / max(sum(counts), 1)
    return {"eval_loss": round(loss, 5), "eval_perplexity": round(math.exp(min(loss, 50)), 3)}


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 16,
    greedy: bool = True,
    temperature: float = 1.0,
    progress: bool = False,
) -> list[str]:
    """Continuations of ``prompts`` (left-padded batches), special tokens removed."""
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    outs = []
    try:
        batches = range(0, len(prompts), batch_size)
        for s in _progress(batches, progress, "generate", len(batches)):
            enc = tokenizer(
                prompts[s : s + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=True,
            ).to(device)
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=not greedy,
                temperature=temperature if not greedy else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = gen[:, enc["input_ids"].shape[1] :]
            outs += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return outs


def evaluate(
    model,
    tokenizer,
    rows: list[dict],
    examples: list[Example],
    n_generate: int,
    max_new_tokens: int,
    progress: bool = False,
    keep_samples: int | None = 5,
    heldout: dict | None = None,
) -> dict:
    """Held-out loss/perplexity over ``rows`` and task metrics on the first ``n_generate``
    examples; ``primary`` names the headline metric per task; ``samples`` holds the first
    ``keep_samples`` predictions (``None``: every one, with the full texts). ``heldout``: the
    loss/perplexity already measured on ``rows`` at these weights (the bench's eval curve
    ends there), so the forward over ``rows`` is not repeated."""
    out = dict(heldout) if heldout else heldout_loss(model, tokenizer, rows, progress=progress)
    if n_generate and examples:
        sample = examples[:n_generate]
        preds = generate(
            model,
            tokenizer,
            [prompt_text(tokenizer, e) for e in sample],
            max_new_tokens,
            progress=progress,
        )
        out.update(task_scores([e.task for e in sample], preds, [e.references for e in sample]))
        out["primary"] = {t: f"{t}/{PRIMARY[t]}" for t in {e.task for e in sample}}
        cut = 200 if keep_samples is not None else None  # a preview, or the whole text
        out["samples"] = [
            {
                "prompt": e.messages[-2]["content"][:cut],
                "prediction": p,
                "reference": e.references[0][:cut],
                **({"references": e.references, "task": e.task} if cut is None else {}),
            }
            for e, p in zip(sample[:keep_samples], preds)
        ]
    return out
