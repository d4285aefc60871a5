"""SLAP and the baselines it is compared with, behind one signature (see ``registry``)."""

from __future__ import annotations

import torch

from ._checks import check_choice, check_features, positive_float, positive_int
from .farthest import farthest_point_in_group
from .registry import Selection, register
from .strata import (
    BINNINGS,
    TILTS,
    assign_strata,
    stratum_budgets,
    weighted_sample_without_replacement,
)

FEATURE_NORMS = ("unit", "none")
WEIGHTINGS = ("none", "stratified", "low_rescale")


def _empty() -> torch.Tensor:
    return torch.empty(0, dtype=torch.long)


def normalised(features: torch.Tensor, feature_norm: str) -> torch.Tensor:
    """Rows scaled to unit length (``unit``; zero rows stay zero) or as they are (``none``).

    Farthest-point selection on raw gradient features picks by size: a token-mean gradient's
    norm scales like 1/sqrt(answer tokens) and barely-trained vocabulary rows inflate it, so
    short answers and rare tokens would win. On the unit sphere only direction counts
    (``docs/method.md``, section 6).

    >>> normalised(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), "unit").tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    check_choice("feature_norm", feature_norm, FEATURE_NORMS)
    if feature_norm == "none":
        return features
    return features / features.norm(dim=1, keepdim=True).clamp(min=1e-30)


def projected(features: torch.Tensor, distance_dim: int) -> torch.Tensor:
    """Features mapped to ``distance_dim`` dimensions by a fixed Gaussian projection when they
    are wider (0: unchanged). Distances are then kept within a factor ``1 +- O(1/sqrt(dim))``
    (Johnson-Lindenstrauss): farthest-point selection gets cheaper in proportion, at the price
    of near-ties decided on approximate distances. For pools of thousands of rows.

    >>> projected(torch.randn(5, 64), 16).shape, projected(torch.randn(5, 8), 16).shape
    (torch.Size([5, 16]), torch.Size([5, 8]))
    """
    if isinstance(distance_dim, bool) or not isinstance(distance_dim, int) or distance_dim < 0:
        raise ValueError(f"distance_dim must be an int >= 0, got {distance_dim!r}")
    if distance_dim == 0 or features.shape[1] <= distance_dim:
        return features
    g = torch.Generator().manual_seed(features.shape[1] * 7919 + distance_dim)
    r = torch.randn(features.shape[1], distance_dim, generator=g) / distance_dim**0.5
    return features @ r.to(features.device, features.dtype)


def stratum_weights(losses, strata, indices, budgets, sizes, weighting: str) -> torch.Tensor | None:
    """Loss weights of the kept rows (mean 1 over the kept rows), or None for plain training.

    ``stratified``: each kept row stands for its stratum, ``|S_k| / M_k`` (the unbiased
    stratified estimator of the pool's mean gradient). ``low_rescale``: InfoBatch's rescaling,
    kept rows below the pool's mean loss weighted by ``|low| / |low kept|``.
    """
    check_choice("weighting", weighting, WEIGHTINGS)
    if weighting == "none" or indices.numel() == 0:
        return None
    if weighting == "stratified":
        k = strata[indices]
        w = sizes[k].float() / budgets[k].clamp(min=1).float()
    else:
        low = losses < losses.mean()
        kept_low = int(low[indices].sum())
        w = torch.ones(indices.numel())
        if kept_low:
            w[low[indices]] = int(low.sum()) / kept_low
    return w * (w.numel() / w.sum())


@register("slap", needs_features=True)
def slap(
    losses,
    features,
    budget,
    generator,
    *,
    num_strata: int = 5,
    temperature: float = 1.0,
    binning: str = "equal_width",
    tilt: str = "rank",
    feature_norm: str = "unit",
    weighting: str = "none",
    distance_dim: int = 0,
) -> Selection:
    """Stratified loss-based pruning: loss strata, ``softmax(tilt(loss) / T)`` budgets, then
    relative farthest-point selection on unit-length features inside each stratum (lowest-loss
    stratum first), the running minimum distance carried across strata.

    >>> g = torch.Generator().manual_seed(0)
    >>> losses = torch.tensor([0.1, 0.2, 0.3, 5.0, 5.1, 5.2])
    >>> feats = torch.eye(6)
    >>> s = slap(losses, feats, 3, g, num_strata=2)
    >>> s.info["stratum_sizes"], int(s.info["stratum_budgets"].sum())
    ([3, 3], 3)
    """
    num_strata = positive_int("num_strata", num_strata)
    temperature = positive_float("temperature", temperature)
    check_choice("binning", binning, BINNINGS)
    check_choice("tilt", tilt, TILTS)
    check_choice("weighting", weighting, WEIGHTINGS)
    features = normalised(check_features(features, losses.numel(), "slap"), feature_norm)
    features = projected(features, distance_dim)
    strata = assign_strata(losses, num_strata, binning)
    budgets = stratum_budgets(losses, strata, num_strata, budget, temperature, generator, tilt)
    sq_norms = (features * features).sum(1)
    selected: list[torch.Tensor] = []
    for k in range(num_strata):
        members = (strata == k).nonzero().flatten()
        picked = farthest_point_in_group(
            features, sq_norms, members, int(budgets[k]), selected, generator
        )
        if picked.numel():
            selected.append(picked)
    indices = torch.cat(selected) if selected else _empty()
    sizes = torch.bincount(strata, minlength=num_strata)
    weights = stratum_weights(losses, strata, indices, budgets, sizes, weighting)
    return Selection(
        indices,
        weights,
        strata,
        {"stratum_sizes": sizes.tolist(), "stratum_budgets": budgets, "binning": binning},
    )


@register("kcenter", needs_features=True)
def kcenter(
    losses, features, budget, generator, *, feature_norm: str = "unit", distance_dim: int = 0
) -> Selection:
    """Greedy farthest-point selection over the whole pool, first point random (no strata)."""
    features = normalised(check_features(features, losses.numel(), "kcenter"), feature_norm)
    features = projected(features, distance_dim)
    members = torch.arange(losses.numel())
    sq_norms = (features * features).sum(1)
    return Selection(farthest_point_in_group(features, sq_norms, members, budget, [], generator))


@register("random", uses_losses=False)
def random(losses, features, budget, generator) -> Selection:
    """Uniform random subset of size ``budget``."""
    return Selection(torch.randperm(losses.numel(), generator=generator)[:budget])


@register("full", uses_losses=False, keeps_everything=True)
def full(losses, features, budget, generator) -> Selection:
    """Every example (the full-data baseline); ``budget`` must equal the pool size."""
    if budget != losses.numel():
        raise ValueError(f"method 'full' keeps all {losses.numel()} examples, got budget {budget}")
    return Selection(torch.arange(losses.numel()))


@register("hard")
def hard(losses, features, budget, generator) -> Selection:
    """Hard sampling: the ``budget`` highest-loss examples."""
    return Selection(torch.topk(losses, budget).indices if budget else _empty())


@register("ccs")
def ccs(
    losses, features, budget, generator, *, hard_cut: float = 0.1, num_strata: int = 5
) -> Selection:
    """Coverage-centric coreset selection: drop the hardest ``hard_cut`` share (fewer if the
    budget would not fit), split the rest into equal-width loss bins, fill bins smallest first
    with ``min(size, remaining // bins_left)``, sample uniformly inside each bin."""
    num_strata = positive_int("num_strata", num_strata)
    if not 0.0 <= hard_cut < 1.0:
        raise ValueError(f"hard_cut must be in [0, 1), got {hard_cut!r}")
    n = losses.numel()
    cut = min(int(hard_cut * n), n - budget)
    order = torch.argsort(losses, descending=True, stable=True)
    rest = order[cut:]
    strata = torch.full((n,), -1, dtype=torch.long)  # -1: removed by the hard cut
    strata[rest] = assign_strata(losses[rest], num_strata, "equal_width")
    sizes = torch.bincount(strata[rest], minlength=num_strata)
    budgets = torch.zeros(num_strata, dtype=torch.long)
    remaining = budget
    for left, k in enumerate(torch.argsort(sizes, stable=True).tolist()):
        budgets[k] = min(int(sizes[k]), remaining // (num_strata - left))
        remaining -= int(budgets[k])
    picks = []
    for k in range(num_strata):
        members = (strata == k).nonzero().flatten()
        perm = torch.randperm(members.numel(), generator=generator)[: int(budgets[k])]
        picks.append(members[perm])
    info = {"hard_cut": cut, "stratum_sizes": sizes.tolist(), "stratum_budgets": budgets}
    return Selection(torch.cat(picks), None, strata, info)


@register("infobatch", table_threshold=True, anneal_after=0.875)
def infobatch(losses, features, budget, generator, *, threshold: float | None = None) -> Selection:
    """InfoBatch's per-pool rule: prune at random among the examples whose loss is below
    ``threshold`` (default: the pool mean; InfoBatch uses the mean over the whole dataset's last
    recorded losses) and weight the kept below-threshold ones by ``|low| / |low kept|``
    (= 1/(1-r)), so the expected gradient is unchanged. The number pruned is ``N - budget``; if
    that exceeds the below-threshold count, the rest is pruned at random from the others,
    reweighted the same way (outside InfoBatch's rule)."""
    n = losses.numel()
    cut = float(losses.mean()) if threshold is None else float(threshold)
    low = (losses < cut).nonzero().flatten()
    high = (losses >= cut).nonzero().flatten()
    drop = n - budget
    drop_low = min(drop, low.numel())
    drop_high = drop - drop_low
    kept, weights = [], []
    for group, d in ((low, drop_low), (high, drop_high)):
        keep = group.numel() - d
        if keep == 0:
            continue
        perm = torch.randperm(group.numel(), generator=generator)[:keep]
        kept.append(group[perm])
        weights.append(torch.full((keep,), group.numel() / keep))
    if not kept:
        return Selection(_empty(), torch.empty(0), None, {"pruned_low": drop_low})
    info = {"pruned_low": drop_low, "pruned_high": drop_high, "threshold": cut}
    return Selection(torch.cat(kept), torch.cat(weights), None, info)


@register("selective_backprop")
def selective_backprop(
    losses, features, budget, generator, *, beta: float | None = None
) -> Selection:
    """SelectiveBackprop: keep ``budget`` examples drawn without replacement with probability
    proportional to ``percentile(loss) ** beta``. The default ``beta = N / budget - 1`` is the one
    whose expected keep share (``1 / (beta + 1)``) equals the budget share."""
    n = losses.numel()
    if budget == 0:
        return Selection(_empty())
    beta = n / budget - 1 if beta is None else float(beta)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    ranks = torch.empty(n)
    ranks[torch.argsort(losses, stable=True)] = torch.arange(1, n + 1, dtype=torch.float32)
    log_w = beta * torch.log(ranks / n)
    picked = weighted_sample_without_replacement(log_w, budget, generator)
    return Selection(picked, None, None, {"beta": beta})
