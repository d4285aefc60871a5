"""Greedy farthest-point (k-center) selection with a running minimum distance, in O(N) memory.

Squared Euclidean distances are used throughout (same argmax, no square roots). The running
minimum is kept only for the candidates still in play; distances of a new stratum's members to
everything already selected are computed in row chunks, so neither an N x N nor an N x M matrix
ever exists.
"""

from __future__ import annotations

import torch

# At most this many distances are materialised at once when a stratum meets the selected set.
CHUNK_ELEMENTS = 1 << 20
# Picks made per block before the whole group is updated with one matrix product.
BLOCK = 64


def squared_distances_to_set(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, centers_sq: torch.Tensor
) -> torch.Tensor:
    """``min_j ||x_i - c_j||^2`` for every row of ``x``, chunked over rows.

    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> c = torch.tensor([[0.0, 0.0]])
    >>> squared_distances_to_set(x, (x * x).sum(1), c, (c * c).sum(1)).tolist()
    [0.0, 25.0]
    """
    out = torch.full((x.shape[0],), float("inf"), device=x.device)
    if centers.shape[0] == 0:
        return out
    rows = max(1, CHUNK_ELEMENTS // centers.shape[0])
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows] @ centers.T  # (rows, m), bounded by CHUNK_ELEMENTS
        d = x_sq[start : start + rows, None] - 2 * block + centers_sq[None, :]
        out[start : start + rows] = d.amin(dim=1).clamp_(min=0)
    return out


def farthest_point_in_group(
    features: torch.Tensor,
    sq_norms: torch.Tensor,
    members: torch.Tensor,
    k: int,
    selected: list[torch.Tensor],
    generator: torch.Generator | None,
    block: int = BLOCK,
) -> torch.Tensor:
    """Pick ``k`` of ``members`` greedily, each the farthest from everything selected so far
    (``selected``: index tensors of earlier picks, earlier groups included). If nothing has been
    selected yet the first pick is uniformly random and counts as selected.

    Members are visited in a random order so that exact ties (duplicate or zero features) are
    broken at random rather than by position in the batch.

    Blocked, and exact: the ``block`` members with the largest running minimum are updated
    against each new pick one by one (a ``block x d`` product), and a pick is accepted while
    its updated distance is at least the largest running minimum outside the block (an upper
    bound for those members, since running minima only fall). The rest of the group is updated
    once per block with one matrix product instead of once per pick: the same picks as the
    one-at-a-time greedy, at matrix-multiply speed rather than memory-bound matrix-vector speed.
    """
    if k == 0 or members.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    if k >= members.numel():
        return members.clone()
    perm = torch.randperm(members.numel(), generator=generator)
    members = members[perm.to(members.device)]
    x = features[members.to(features.device)]
    x_sq = sq_norms[members.to(features.device)]
    prev = torch.cat(selected) if selected else torch.empty(0, dtype=torch.long)
    prev = prev.to(features.device)
    min_d = squared_distances_to_set(x, x_sq, features[prev], sq_norms[prev])
    picks: list[int] = []
    if prev.numel() == 0:  # nothing selected yet: the first (random, see above) member
        picks.append(0)
        _update(min_d, x, x_sq, [0])
    while len(picks) < k:
        new = _block_picks(min_d, x, x_sq, min(block, k - len(picks)))
        if not new:  # cannot happen while members are left; never loop forever on it
            raise RuntimeError("farthest-point selection ran out of candidates")
        picks += new
    return members[torch.tensor(picks, dtype=torch.long)]


def _block_picks(min_d, x, x_sq, b: int) -> list[int]:
    """Up to ``b`` exact greedy picks from the top of ``min_d`` (updated in place)."""
    top = min(b + 1, int((min_d >= 0).sum()))
    if top == 0:
        return []
    vals, cand = torch.topk(min_d, top)
    bound = float(vals[b]) if top > b else float("-inf")  # outside the block: at most this
    cand = cand[:b]
    xc, xc_sq = x[cand], x_sq[cand]
    # The block's own distances, once; the greedy inside the block is plain Python on b x b
    # numbers (a torch call per pick would cost more than the arithmetic).
    within = torch.addmm(xc_sq[:, None], xc, xc.T, alpha=-2.0).add_(xc_sq[None, :])
    within = within.clamp_(min=0).tolist()  # rounding can make a duplicate's distance < 0
    cur = vals[:b].tolist()
    chosen: list[int] = []
    while len(chosen) < len(cur):
        j = max(range(len(cur)), key=cur.__getitem__)
        if chosen and cur[j] < bound:
            break  # a member outside the block may now be farther: update everything first
        chosen.append(j)
        cur = [min(c, d) for c, d in zip(cur, within[j])]  # chosen ones stay at -1
        cur[j] = -1.0
    picks = cand[torch.tensor(chosen, dtype=torch.long)].tolist()
    _update(min_d, x, x_sq, picks)
    return picks


def _update(min_d, x, x_sq, picks: list[int]) -> None:
    """Lower the running minimum with the distances to ``picks`` (one matrix product)."""
    idx = torch.tensor(picks, dtype=torch.long, device=x.device)
    c = x[idx]
    d = torch.addmm(x_sq[:, None], x, c.T, alpha=-2.0).add_(x_sq[idx][None, :])
    # Clamped: a negative rounding error on a duplicate would read as "already picked" (-1 marks
    # those), and the block search counts the members still in play by min_d >= 0.
    torch.minimum(min_d, d.amin(1).clamp_(min=0), out=min_d)
    min_d[idx] = -1.0  # never again
