"""Loss strata and the softmax-of-loss budget draw (SLAP steps 2 and 3)."""

from __future__ import annotations

import torch

BINNINGS = ("equal_width", "quantile")


def assign_strata(
    losses: torch.Tensor, num_strata: int, binning: str = "equal_width"
) -> torch.Tensor:
    """Stratum id in ``[0, num_strata)`` for every example; stratum 0 holds the lowest losses.

    ``equal_width`` splits ``[min, max]`` into equal intervals (as CCS does); ``quantile`` gives
    every stratum the same number of examples (ties are split by position, so counts stay equal).

    >>> assign_strata(torch.tensor([0.0, 1.0, 2.0, 10.0]), 2).tolist()
    [0, 0, 0, 1]
    >>> assign_strata(torch.tensor([0.0, 1.0, 2.0, 10.0]), 2, "quantile").tolist()
    [0, 0, 1, 1]
    """
    n = losses.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    if binning == "equal_width":
        lo, hi = losses.min(), losses.max()
        if hi <= lo:  # all losses equal: one stratum holds everything
            return torch.zeros(n, dtype=torch.long)
        scaled = (losses - lo) / (hi - lo) * num_strata
        return scaled.floor().long().clamp_(0, num_strata - 1)
    if binning == "quantile":
        order = torch.argsort(losses, stable=True)
        strata = torch.empty(n, dtype=torch.long)
        strata[order] = torch.arange(n) * num_strata // max(n, 1)
        return strata
    raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")


def weighted_sample_without_replacement(
    log_weights: torch.Tensor, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Draw ``k`` distinct indices, each successive draw with probability proportional to
    ``exp(log_weights)`` among those left (Gumbel top-k; it equals sequential sampling without
    replacement and, unlike ``torch.multinomial``, never fails when weights underflow to 0).

    >>> g = torch.Generator().manual_seed(0)
    >>> sorted(weighted_sample_without_replacement(torch.zeros(5), 5, g).tolist())
    [0, 1, 2, 3, 4]
    """
    if k == 0:
        return torch.empty(0, dtype=torch.long)
    u = torch.rand(log_weights.shape, generator=generator, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(u.clamp_(1e-300, 1.0 - 1e-16)))
    return torch.topk(log_weights.double() + gumbel, k).indices


def stratum_budgets(
    losses: torch.Tensor,
    strata: torch.Tensor,
    num_strata: int,
    budget: int,
    temperature: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Per-stratum budgets: draw ``budget`` examples without replacement with probability
    ``softmax(loss / temperature)`` and count how many land in each stratum. Only the counts are
    used, so a stratum's budget never exceeds its size and the budgets sum to ``budget``.

    >>> l = torch.tensor([0.0, 0.0, 50.0, 50.0])
    >>> stratum_budgets(l, torch.tensor([0, 0, 1, 1]), 2, 2, 1.0, torch.Generator()).tolist()
    [0, 2]
    """
    drawn = weighted_sample_without_replacement(losses / temperature, budget, generator)
    return torch.bincount(strata[drawn], minlength=num_strata)
