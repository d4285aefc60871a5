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
) -> torch.Tensor:
    """Pick ``k`` of ``members`` greedily, each the farthest from everything selected so far
    (``selected``: index tensors of earlier picks, earlier groups included). If nothing has been
    selected yet the first pick is uniformly random and counts as selected.

    Members are visited in a random order so that exact ties (duplicate or zero features) are
    broken at random rather than by position in the batch.
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
    picks = torch.empty(k, dtype=torch.long)
    for j in range(k):
        # With nothing selected yet every distance is +inf and argmax is position 0, which is a
        # uniformly random member thanks to the permutation above.
        p = int(torch.argmax(min_d))
        picks[j] = p
        # d(x, x_p) = |x|^2 - 2 x.x_p + |x_p|^2, one matrix-vector product per pick.
        d = torch.addmv(x_sq, x, x[p], alpha=-2.0).add_(x_sq[p])
        torch.minimum(min_d, d, out=min_d)
        min_d[p] = -1.0  # never again
    return members[picks]
