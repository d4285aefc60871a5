"""Per-example gradients of the output projection, exact and sketched (SLAP step 4).

For the token-mean loss of example ``i`` over its ``n_i`` supervised tokens and an output layer
``z_t = W h_t`` (``W`` is ``V x d``)::

    G_i = (1 / n_i) sum_t (softmax(z_t) - onehot(y_t)) h_t^T

``HeadGradientSketch`` returns ``R_V^T P_a G_i P_b R_d`` (``R_V``: ``V x kv``, ``R_d``: ``d x kd``,
``P``: optional diagonal preconditioners), computed per token as ``a_t b_t^T`` with
``a_t = p_t^T R_V - R_V[y_t]`` and ``b_t = h_t^T R_d``, so no ``V x d`` matrix is ever formed.

With tied input/output embeddings ``G_i`` is the output-side part of the shared matrix's
gradient; the input-side part (rows of the example's own tokens) is left out on purpose: it is
sparse, and what SLAP needs is a direction of the loss's gradient, not its exact value.
"""

from __future__ import annotations

import torch

from .loss import IGNORE_INDEX, shift_for_next_token


def _supervised(logits, hidden, labels):
    z, y = shift_for_next_token(logits, labels)
    h = hidden[:, :-1]
    mask = y != IGNORE_INDEX
    rows = mask.nonzero()[:, 0]
    counts = mask.sum(1).clamp(min=1).to(torch.float32)
    return z[mask], h[mask], y[mask], rows, counts


def head_gradients(
    logits: torch.Tensor, hidden: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Exact per-example gradient of the token-mean loss w.r.t. the output weight, flattened to
    ``(B, V * d)``. Memory ``B x V x d``: for tests and small models.

    >>> logits, hidden = torch.zeros(1, 2, 3), torch.ones(1, 2, 2)
    >>> head_gradients(logits, hidden, torch.tensor([[0, 1]])).view(3, 2)[:, 0]
    tensor([ 0.3333, -0.6667,  0.3333])
    """
    zs, hs, ys, rows, counts = _supervised(logits, hidden, labels)
    err = torch.softmax(zs.float(), dim=-1)
    err[torch.arange(ys.numel()), ys] -= 1.0
    err = err / counts[rows, None]
    b, v, d = logits.shape[0], logits.shape[-1], hidden.shape[-1]
    out = torch.zeros(b, v, d, dtype=torch.float32, device=logits.device)
    out.index_add_(0, rows, err[:, :, None] * hs.float()[:, None, :])
    return out.view(b, v * d)


def floored_second_moment(second_moment: torch.Tensor, floor: float, eps: float = 1e-8):
    """Adam's ``v`` with every entry raised to at least ``floor x mean(v)`` (and ``eps^2``).

    Rows of the output layer whose tokens were barely trained have ``v ~ 0``; dividing by
    ``sqrt(v)`` there blows a feature up by 1e5x or more, so such a row's size would drown every
    direction in the window. The floor bounds the preconditioner's range to
    ``1 / sqrt(floor)`` of its mean scale (``docs/method.md``, section 5).

    >>> floored_second_moment(torch.tensor([[0.0, 4.0], [4.0, 4.0]]), 0.5).tolist()
    [[1.5, 4.0], [4.0, 4.0]]
    """
    v = second_moment.float()
    lo = max(float(floor) * float(v.mean()), eps * eps)
    return v.clamp(min=lo)


def rank1_inverse_sqrt(second_moment: torch.Tensor, eps: float = 1e-8, floor: float = 0.0):
    """Row and column factors ``a, b`` with ``1 / sqrt(v_ij) ~ a_i b_j`` (Adafactor's rank-1
    factorisation ``v_ij ~ rowmean_i colmean_j / mean``), the row and column means floored at
    ``floor x mean(v)`` so that no factor exceeds ``1 / sqrt(floor)`` times its typical value.

    >>> a, b = rank1_inverse_sqrt(torch.full((2, 3), 4.0))
    >>> a[:, None] * b[None, :]
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    >>> a, _ = rank1_inverse_sqrt(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), floor=0.1)
    >>> float(a.max()) <= 0.1 ** -0.5 + 1e-6  # mean(v) = 1: the typical factor is 1
    True
    """
    v = second_moment.float()  # only its means are needed: no clamped V x d copy
    m = v.mean().clamp(min=eps * eps)
    lo = max(float(floor) * float(m), eps * eps)
    rows, cols = v.mean(1).clamp(min=lo), v.mean(0).clamp(min=lo)
    return (rows / m.sqrt()).rsqrt(), (cols / m.sqrt()).rsqrt()


class HeadGradientSketch:
    """Random-projected output-layer gradient features, ``(B, kv * kd)`` per call.

    Args:
        vocab_size, hidden_size: shape ``V x d`` of the output weight.
        kv, kd: projection widths of the vocabulary and hidden sides (kv >= 64 recommended:
            kv = 32 was measured to preserve gradient geometry poorly).
        seed: seed of the fixed Gaussian projections (identical on every rank).

    >>> sk = HeadGradientSketch(vocab_size=11, hidden_size=4, kv=3, kd=2, seed=0)
    >>> sk(torch.randn(2, 5, 11), torch.randn(2, 5, 4), torch.randint(0, 11, (2, 5))).shape
    torch.Size([2, 6])
    """

    def __init__(
        self, vocab_size: int, hidden_size: int, kv: int = 64, kd: int = 64, seed: int = 0
    ):
        g = torch.Generator().manual_seed(seed)
        self.r_vocab = torch.randn(vocab_size, kv, generator=g) / kv**0.5
        self.r_hidden = torch.randn(hidden_size, kd, generator=g) / kd**0.5
        self.kv, self.kd = kv, kd
        self.last_preconditioner = "none"

    def _projections(self, device, second_moment, mode, floor=0.0):
        rv, rd = self.r_vocab.to(device), self.r_hidden.to(device)
        if second_moment is None or mode == "none":
            self.last_preconditioner = "identity"
        elif mode == "adam_rank1":
            a, b = rank1_inverse_sqrt(second_moment.to(device), floor=floor)
            rv, rd = a[:, None] * rv, b[:, None] * rd
            self.last_preconditioner = "adam_rank1"
        else:
            raise ValueError(f"unknown preconditioning mode {mode!r}")
        return rv, rd

    @torch.no_grad()
    def __call__(
        self,
        logits: torch.Tensor,
        hidden: torch.Tensor,
        labels: torch.Tensor,
        second_moment: torch.Tensor | None = None,
        *,
        precondition: str = "adam_rank1",
        floor: float = 0.0,
        eps: float = 1e-8,
        chunk_tokens: int = 4096,
    ) -> torch.Tensor:
        """Sketch of each row's output-layer gradient, preconditioned by Adam's bias-corrected
        second moment ``second_moment`` (``V x d``) when given: ``adam_rank1`` (same cost) or
        ``adam_exact`` (elementwise ``G / (sqrt(v) + eps)``; forms ``B x V x d``, small models),
        ``v`` floored at ``floor x mean(v)`` in both (:func:`floored_second_moment`)."""
        if precondition == "adam_exact" and second_moment is not None:
            g = head_gradients(logits, hidden, labels).view(logits.shape[0], *second_moment.shape)
            v = floored_second_moment(second_moment.to(g.device), floor, eps)
            g = g / (v.sqrt() + eps)
            self.last_preconditioner = "adam_exact"
            rv, rd = self.r_vocab.to(g.device), self.r_hidden.to(g.device)
            return torch.einsum("vi,bvd,dj->bij", rv, g, rd).reshape(g.shape[0], -1)
        feats, _, _ = self.with_losses(
            logits,
            hidden,
            labels,
            second_moment,
            precondition=precondition,
            floor=floor,
            chunk_tokens=chunk_tokens,
        )
        return feats

    @torch.no_grad()
    def with_losses(
        self,
        logits,
        hidden,
        labels,
        second_moment=None,
        *,
        precondition: str = "adam_rank1",
        floor: float = 0.0,
        chunk_tokens: int = 4096,
    ):
        """``(features, losses, valid)`` in one pass over the supervised tokens: the loss
        (``logsumexp(z) - z_y``) and the sketch share the gather and the softmax."""
        rv, rd = self._projections(logits.device, second_moment, precondition, floor)
        z, y = shift_for_next_token(logits, labels)
        mask = y != IGNORE_INDEX
        n_tok = mask.sum(1)
        counts = n_tok.clamp(min=1).to(torch.float32)[:, None]
        zs, ys = z[mask], y[mask]  # only supervised tokens pay for the softmax
        a_sup = torch.empty(ys.numel(), self.kv, device=logits.device)
        nll = torch.empty(ys.numel(), device=logits.device)
        for s in range(0, ys.numel(), chunk_tokens):
            sl = slice(s, s + chunk_tokens)
            # One exponential pass over the vocabulary serves both the loss and the sketch:
            # e = exp(z - max z), loss = max + log(sum e) - z_y, softmax @ R_V = (e @ R_V) / sum e.
            zc = zs[sl].float()  # a copy (boolean index above): safe to change in place
            zy = zc.gather(1, ys[sl, None])
            mx = zc.amax(-1, keepdim=True)
            e = zc.sub_(mx).exp_()
            tot = e.sum(-1, keepdim=True)
            nll[sl] = (mx + tot.log() - zy).squeeze(1)
            a_sup[sl] = (e @ rv) / tot - rv[ys[sl]]
        a = torch.zeros(*y.shape, self.kv, device=logits.device)
        a[mask] = a_sup
        a = a / counts[:, :, None]
        b = hidden[:, :-1].float() @ rd  # (B, T-1, kd)
        feats = torch.bmm(a.transpose(1, 2), b).reshape(logits.shape[0], -1)
        sums = torch.zeros(logits.shape[0], device=logits.device)
        sums.index_add_(0, mask.nonzero()[:, 0], nll)
        valid = n_tok > 0
        return feats, torch.where(valid, sums / counts[:, 0], torch.zeros_like(sums)), valid
