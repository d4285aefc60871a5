"""Rows of a gradient-accumulation window: stack micro-batches, cut them back into micro-batches.

Torch only. Batches are dicts of ``(B, T)`` tensors, right-padded; ``slap_id`` (``(B,)``) carries
the dataset index of each row and ``slap_weight`` (``(B,)``) an optional loss weight.
"""

from __future__ import annotations

import torch

from ..score.loss import IGNORE_INDEX

ID_KEY, WEIGHT_KEY = "slap_id", "slap_weight"
ROW_KEYS = (ID_KEY, WEIGHT_KEY)  # one value per row, never padded
PAD_VALUES = {
    "input_ids": None,  # the tokenizer's pad id, given by the caller
    "attention_mask": 0,
    "labels": IGNORE_INDEX,
    "position_ids": 0,
    "token_type_ids": 0,
    "completion_mask": 0,
    "assistant_masks": 0,
}
PACKED_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx")


def check_batch(batch: dict) -> None:
    """Refuse batches whose rows are not independent examples (packing, padding-free) or whose
    keys slaptune does not know how to pad, with the reason and what to do."""
    packed = [k for k in PACKED_KEYS if k in batch]
    if packed:
        raise ValueError(
            f"packed / padding-free batches ({', '.join(packed)}) are not supported: rows are not "
            "examples, so row selection is meaningless. Set packing=False and padding_free=False."
        )
    unknown = [k for k in batch if k not in PAD_VALUES and k not in ROW_KEYS]
    if unknown:
        raise ValueError(
            f"batch has keys slaptune cannot re-pad: {unknown}; known: {sorted(PAD_VALUES)}"
        )
    if "attention_mask" in batch:
        m = batch["attention_mask"]
        if m.shape[1] > 1 and bool((m[:, 0] == 0).any()) and bool((m[:, -1] == 1).all()):
            raise ValueError("left-padded batches are not supported; set padding_side='right'")


def pad_to(t: torch.Tensor, length: int, value: int) -> torch.Tensor:
    if t.shape[1] >= length:
        return t
    pad = torch.full((t.shape[0], length - t.shape[1]), value, dtype=t.dtype, device=t.device)
    return torch.cat([t, pad], dim=1)


def stack_rows(batches: list[dict], pad_token_id: int) -> dict:
    """One dict of ``(N, T_max)`` tensors from several micro-batches.

    >>> a = {"input_ids": torch.ones(1, 2, dtype=torch.long), "labels": torch.ones(1, 2).long()}
    >>> b = {"input_ids": torch.ones(1, 3, dtype=torch.long), "labels": torch.ones(1, 3).long()}
    >>> stack_rows([a, b], pad_token_id=0)["labels"].tolist()
    [[1, 1, -100], [1, 1, 1]]
    """
    length = max(b["input_ids"].shape[1] for b in batches)
    out = {}
    for key in batches[0]:
        if key in ROW_KEYS:
            out[key] = torch.cat([b[key] for b in batches])
            continue
        value = pad_token_id if PAD_VALUES[key] is None else PAD_VALUES[key]
        out[key] = torch.cat([pad_to(b[key], length, value) for b in batches])
    return out


def take_rows(rows: dict, index: torch.Tensor) -> dict:
    return {k: v[index.to(v.device)] for k, v in rows.items()}


def trim_padding(batch: dict) -> dict:
    """Drop trailing columns that are padding in every row (attention mask 0)."""
    if "attention_mask" not in batch or batch["attention_mask"].numel() == 0:
        return batch
    used = batch["attention_mask"].any(0).nonzero()
    length = int(used.max()) + 1 if used.numel() else 1
    return {k: v if k in ROW_KEYS else v[:, :length] for k, v in batch.items()}


def split_rows(rows: dict, parts: int) -> list[dict]:
    """Cut ``N`` rows into ``parts`` consecutive micro-batches as equal as possible (the first
    ones one row larger), each trimmed to its own longest row.

    >>> rows = {"input_ids": torch.arange(10).view(5, 2), "attention_mask": torch.ones(5, 2)}
    >>> [b["input_ids"].shape[0] for b in split_rows(rows, 2)]
    [3, 2]
    """
    n = next(iter(rows.values())).shape[0]
    sizes = [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
    out, start = [], 0
    for size in sizes:
        index = torch.arange(start, start + size)
        out.append(trim_padding(take_rows(rows, index)))
        start += size
    return out


def supervised_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Per-row count of tokens that carry loss after the causal shift."""
    return (labels[:, 1:] != IGNORE_INDEX).sum(1)
