"""Per-example token-mean cross-entropy over the supervised tokens (SLAP step 1)."""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def shift_for_next_token(logits: torch.Tensor, labels: torch.Tensor):
    """Align position ``t``'s prediction with token ``t + 1`` (the usual causal-LM shift)."""
    return logits[:, :-1], labels[:, 1:]


def example_losses(
    logits: torch.Tensor, labels: torch.Tensor, *, chunk_tokens: int | None = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean next-token cross-entropy of each row over its supervised tokens.

    Args:
        logits: ``(B, T, V)`` unshifted logits, any float dtype.
        labels: ``(B, T)`` token ids with ``-100`` where no loss is taken (prompt, padding).
        chunk_tokens: supervised tokens per float32 log-softmax chunk, so that at most
            ``chunk_tokens x V`` float32 values exist at once; None for a single pass.

    Returns:
        ``(losses, valid)``: float32 ``(B,)`` losses and a bool ``(B,)`` mask. A row with no
        supervised token is not valid and its loss is 0 (never NaN).

    >>> logits = torch.zeros(2, 3, 4)
    >>> labels = torch.tensor([[0, 1, 2], [0, -100, -100]])
    >>> l, ok = example_losses(logits, labels)
    >>> l, ok
    (tensor([1.3863, 0.0000]), tensor([ True, False]))
    """
    z, y = shift_for_next_token(logits, labels)
    mask = y != IGNORE_INDEX
    rows = mask.nonzero()[:, 0]
    zs, ys = z[mask], y[mask]  # (n_tok, V), (n_tok,) supervised tokens only
    nll = torch.empty(ys.shape[0], dtype=torch.float32, device=logits.device)
    step = ys.shape[0] if not chunk_tokens else chunk_tokens
    for s in range(0, ys.shape[0], max(step, 1)):
        lp = torch.log_softmax(zs[s : s + step].float(), dim=-1)
        nll[s : s + step] = -lp.gather(1, ys[s : s + step, None]).squeeze(1)
    counts = mask.sum(1)
    sums = torch.zeros(logits.shape[0], dtype=torch.float32, device=logits.device)
    sums.index_add_(0, rows, nll)
    valid = counts > 0
    return torch.where(valid, sums / counts.clamp(min=1), torch.zeros_like(sums)), valid


def losses_from_token_logprobs(
    log_probs: torch.Tensor, label_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same per-example loss from per-token log-probabilities of the target tokens (TRL's
    fused LM-head output), ``(B, T)`` each.

    >>> losses_from_token_logprobs(torch.tensor([[-1.0, -3.0]]), torch.tensor([[1, 1]]))[0]
    tensor([2.])
    """
    m = label_mask.to(torch.float32)
    counts = m.sum(1)
    valid = counts > 0
    loss = -(log_probs.float() * m).sum(1) / counts.clamp(min=1)
    return torch.where(valid, loss, torch.zeros_like(loss)), valid


def token_loss_sums(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sum of next-token cross-entropy over supervised tokens, and the total count of
    supervised tokens: the pieces of a (weighted) token-mean training loss, with gradients.

    >>> sums, count = token_loss_sums(torch.zeros(1, 3, 4), torch.tensor([[0, 1, -100]]))
    >>> round(float(sums[0]), 4), int(count)
    (1.3863, 1)
    """
    z, y = shift_for_next_token(logits, labels)
    tok = torch.nn.functional.cross_entropy(
        z.float().transpose(1, 2), y, reduction="none", ignore_index=IGNORE_INDEX
    )
    return tok.sum(1), (y != IGNORE_INDEX).sum()
