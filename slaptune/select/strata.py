"""Loss strata and the softmax-of-loss budget draw (SLAP steps 2 and 3)."""

from __future__ import annotations

import torch

BINNINGS = ("equal_width", "quantile")
TILTS = ("softmax", "zscore", "rank")


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


def tilt_scores(losses: torch.Tensor, tilt: str) -> torch.Tensor:
    """The scores whose ``softmax(score / temperature)`` draws the budgets.

    ``softmax`` is the paper's: the raw loss, so the tilt depends on the loss's scale (barely
    any at losses ~2 with ``temperature = 1``, nearly top-k at ~20). ``zscore`` standardises
    the losses within the pool; ``rank`` uses the centred percentile scaled to unit variance
    (``sqrt(12) (rank / N - 1/2)``), which ignores outliers too. Both are scale-free: the same
    temperature tilts equally on every task and at every point of training.

    >>> tilt_scores(torch.tensor([1.0, 2.0, 3.0]), "zscore").tolist()
    [-1.0, 0.0, 1.0]
    >>> a, b = torch.tensor([10.0, 0.0, 3.0]), torch.tensor([1e3, 5.0, 7.0])
    >>> torch.equal(tilt_scores(a, "rank"), tilt_scores(b, "rank"))
    True
    """
    if tilt == "softmax":
        return losses
    n = losses.numel()
    if tilt == "zscore":
        sd = losses.std() if n > 1 else torch.tensor(0.0)
        return (losses - losses.mean()) / sd if sd > 0 else torch.zeros_like(losses)
    if tilt == "rank":
        ranks = torch.empty(n)
        ranks[torch.argsort(losses, stable=True)] = torch.arange(n, dtype=torch.float32)
        return (ranks + 0.5 - n / 2) / max(n, 1) * 12**0.5
    raise ValueError(f"tilt must be one of {TILTS}, got {tilt!r}")


def stratum_budgets(
    losses: torch.Tensor,
    strata: torch.Tensor,
    num_strata: int,
    budget: int,
    temperature: float,
    generator: torch.Generator | None,
    tilt: str = "softmax",
) -> torch.Tensor:
    """Per-stratum budgets: draw ``budget`` examples without replacement with probability
    ``softmax(tilt_scores(loss) / temperature)`` and count how many land in each stratum. Only
    the counts are used, so a stratum's budget never exceeds its size and the budgets sum to
    ``budget``.

    >>> l = torch.tensor([0.0, 0.0, 50.0, 50.0])
    >>> stratum_budgets(l, torch.tensor([0, 0, 1, 1]), 2, 2, 1.0, torch.Generator()).tolist()
    [0, 2]
    """
    scores = tilt_scores(losses, tilt)
    drawn = weighted_sample_without_replacement(scores / temperature, budget, generator)
    return torch.bincount(strata[drawn], minlength=num_strata)
