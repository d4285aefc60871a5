"""Hand-derived cases and edge cases for every selection method."""

import pytest
import torch

from slaptune.select import method_names, select
from slaptune.select.registry import method_options

ALL = ["slap", "random", "hard", "ccs", "infobatch", "kcenter", "selective_backprop"]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_every_method_is_registered():
    assert set(ALL) | {"full"} == set(method_names())


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: .*slap"):
        select("nope", torch.rand(4), None, 2)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match="num_strata, temperature, binning"):
        select("slap", torch.rand(4), torch.rand(4, 2), 2, strata=3)
    assert method_options("ccs") == ("hard_cut", "num_strata")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_strata": 0}, "num_strata"),
        ({"temperature": 0.0}, "temperature"),
        ({"binning": "log"}, "binning"),
    ],
)
def test_bad_slap_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select("slap", torch.rand(6), torch.rand(6, 2), 3, generator=gen(), **kwargs)


def test_hard_keeps_top_losses():
    losses = torch.tensor([0.5, 3.0, 1.0, 2.0])
    assert sorted(select("hard", losses, None, 2).indices.tolist()) == [1, 3]


def test_kcenter_hand_case():
    # Points on a line at 0, 1, 10, 11: from any start, the second pick is the far pair's far end.
    feats = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    for seed in range(10):
        sel = select("kcenter", torch.zeros(4), feats, 2, generator=gen(seed), feature_norm="none")
        idx = sel.indices.tolist()
        first, second = idx
        assert second == {0: 3, 1: 3, 2: 0, 3: 0}[first]


def test_slap_relative_distance_carries_across_strata():
    # Stratum 0 = {0, 1} (low loss), stratum 1 = {2, 3, 4} (high loss).
    # Budget 1 in stratum 0 and 1 in stratum 1 must pick, in stratum 1, the point farthest from
    # the stratum-0 pick: that is what "relative" means.
    losses = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    feats = torch.tensor([[0.0], [0.0], [1.0], [5.0], [2.0]])
    second_picks = []
    for seed in range(20):
        sel = select(
            "slap",
            losses,
            feats,
            2,
            generator=gen(seed),
            num_strata=2,
            temperature=1e9,
            feature_norm="none",
        )
        if sel.info["stratum_budgets"].tolist() == [1, 1]:
            second_picks.append(sel.indices.tolist()[1])
        assert sel.kept_strata.tolist() == sorted(sel.kept_strata.tolist())
    assert second_picks and set(second_picks) == {3}


def test_slap_budget_follows_softmax_of_loss():
    # With a huge loss gap, every draw lands in the high-loss stratum.
    losses = torch.tensor([0.0] * 5 + [100.0] * 5)
    sel = select(
        "slap", losses, torch.randn(10, 3), 4, generator=gen(), num_strata=2, tilt="softmax"
    )
    assert sel.info["stratum_budgets"].tolist() == [0, 4]
    assert all(i >= 5 for i in sel.indices.tolist())


def test_ccs_hand_case():
    # 10 examples, hard_cut 0.2 drops the two hardest (9 and 8); two equal-width bins over
    # losses 0..7: {0..3} and {4..7}; budget 4 -> 2 per bin.
    losses = torch.arange(10, dtype=torch.float32)
    sel = select("ccs", losses, None, 4, generator=gen(), hard_cut=0.2, num_strata=2)
    idx = sel.indices.tolist()
    assert 8 not in idx and 9 not in idx
    assert sum(i < 4 for i in idx) == 2 and sum(4 <= i < 8 for i in idx) == 2
    assert sel.info["hard_cut"] == 2


def test_ccs_small_bins_filled_first():
    # Bin sizes 1 and 9, budget 6: the small bin gets min(1, 6 // 2) = 1, the other 5.
    losses = torch.tensor([0.0] * 9 + [10.0])
    sel = select("ccs", losses, None, 6, generator=gen(), hard_cut=0.0, num_strata=2)
    assert sel.info["stratum_budgets"].tolist() == [5, 1]


def test_ccs_hard_cut_shrinks_to_fit_budget():
    sel = select("ccs", torch.arange(10.0), None, 9, generator=gen(), hard_cut=0.5)
    assert sel.info["hard_cut"] == 1 and len(sel.indices) == 9


def test_infobatch_weights_are_inverse_keep_share():
    losses = torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0, 10.0])  # mean 3.33: 4 below, 2 above
    sel = select("infobatch", losses, None, 4, generator=gen())
    idx, w = sel.indices.tolist(), sel.weights.tolist()
    assert {4, 5} <= set(idx)  # above-mean examples are always kept
    for i, wi in zip(idx, w):
        assert wi == pytest.approx(2.0 if i < 4 else 1.0)  # 4 below, 2 kept: 1 / (1 - 0.5)


def test_infobatch_weighted_sum_is_unbiased():
    losses = torch.rand(20, generator=gen(1))
    total = torch.zeros(())
    trials = 4000
    for s in range(trials):
        sel = select("infobatch", losses, None, 14, generator=gen(s))
        total += (losses[sel.indices] * sel.weights).sum()
    assert (total / trials).item() == pytest.approx(losses.sum().item(), rel=0.02)


def test_selective_backprop_prefers_high_loss():
    losses = torch.arange(100, dtype=torch.float32)
    counts = torch.zeros(100)
    for s in range(200):
        counts[select("selective_backprop", losses, None, 20, generator=gen(s)).indices] += 1
    assert counts[80:].sum() > 4 * counts[:20].sum()


# --- edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL)
def test_all_losses_equal(method):
    sel = select(method, torch.ones(12), torch.randn(12, 4), 7, generator=gen())
    assert len(set(sel.indices.tolist())) == 7


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("budget", [0, 1, 3])
def test_pool_smaller_than_strata_and_small_budgets(method, budget):
    sel = select(method, torch.rand(3), torch.randn(3, 4), budget, generator=gen())
    assert sel.indices.numel() == budget
    assert sel.indices.dtype == torch.long


@pytest.mark.parametrize("method", ALL)
def test_budget_equal_to_pool_keeps_everything(method):
    sel = select(method, torch.rand(9), torch.randn(9, 4), 9, generator=gen())
    assert sorted(sel.indices.tolist()) == list(range(9))


@pytest.mark.parametrize("method", ["slap", "kcenter"])
def test_duplicate_and_zero_features(method):
    feats = torch.zeros(10, 5)
    feats[5:] = 1.0  # two groups of identical vectors
    sel = select(method, torch.rand(10, generator=gen(3)), feats, 6, generator=gen())
    assert len(set(sel.indices.tolist())) == 6


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_losses_raise(method, bad):
    losses = torch.rand(6)
    losses[2] = bad
    with pytest.raises(ValueError, match="non-finite.*index 2"):
        select(method, losses, torch.rand(6, 2), 3, generator=gen())


@pytest.mark.parametrize("method", ["slap", "kcenter"])
def test_non_finite_features_raise(method):
    feats = torch.rand(6, 2)
    feats[4, 1] = float("nan")
    with pytest.raises(ValueError, match="row 4"):
        select(method, torch.rand(6), feats, 3, generator=gen())


@pytest.mark.parametrize("method", ["slap", "kcenter"])
def test_missing_features_raise(method):
    with pytest.raises(ValueError, match="needs features"):
        select(method, torch.rand(6), None, 3)


@pytest.mark.parametrize("budget", [-1, 7, 2.5, True])
def test_bad_budget_raises(budget):
    with pytest.raises(ValueError, match="budget"):
        select("random", torch.rand(6), None, budget)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="5 rows but losses has 6"):
        select("slap", torch.rand(6), torch.rand(5, 2), 3)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        select("hard", torch.rand(6, 1), None, 3)


def test_features_in_other_dtype_and_device_give_same_selection():
    losses, feats = torch.rand(40, generator=gen(1)), torch.randn(40, 8, generator=gen(2))
    a = select("slap", losses.double(), feats, 20, generator=gen(5)).indices
    b = select("slap", losses, feats.double(), 20, generator=gen(5)).indices
    c = select("slap", losses, feats.half(), 20, generator=gen(5)).indices
    assert torch.equal(a, b)
    assert c.numel() == 20
    if torch.cuda.is_available():  # pragma: no cover - only where a GPU exists
        d = select("slap", losses, feats.cuda(), 20, generator=gen(5)).indices
        assert torch.equal(a, d)


@pytest.mark.parametrize("method", ALL)
def test_empty_pool(method):
    sel = select(method, torch.empty(0), torch.empty(0, 4), 0, generator=gen())
    assert sel.indices.numel() == 0


def test_slap_stratified_weights_are_stratum_size_over_budget():
    losses = torch.cat([torch.zeros(8), torch.full((4,), 5.0)])  # two strata of 8 and 4
    feats = torch.randn(12, 6, generator=gen(1))
    sel = select("slap", losses, feats, 6, generator=gen(2), num_strata=2, weighting="stratified")
    sizes, budgets = sel.info["stratum_sizes"], sel.info["stratum_budgets"].tolist()
    raw = torch.tensor([sizes[k] / budgets[k] for k in sel.kept_strata.tolist()])
    torch.testing.assert_close(sel.weights, raw * (6 / raw.sum()))
    assert sel.weights.mean().item() == pytest.approx(1.0)


def test_low_rescale_weights_below_mean_rows_by_inverse_keep_share():
    from slaptune.select.methods import stratum_weights

    losses = torch.tensor([0.0, 0.0, 0.0, 0.0, 9.0, 9.0])  # 4 below the mean, 2 above
    kept = torch.tensor([0, 4, 5])  # 1 of the 4 low rows kept: weight 4 before normalising
    w = stratum_weights(losses, None, kept, None, None, "low_rescale")
    torch.testing.assert_close(w, torch.tensor([4.0, 1.0, 1.0]) * (3 / 6))


@pytest.mark.parametrize("tilt", ["zscore", "rank"])
def test_scale_free_tilts_do_not_depend_on_the_loss_scale(tilt):
    losses = torch.rand(64, generator=gen(3))
    feats = torch.randn(64, 8, generator=gen(4))
    a = select("slap", losses, feats, 30, generator=gen(5), tilt=tilt).info["stratum_budgets"]
    b = select("slap", 10 * losses + 3, feats, 30, generator=gen(5), tilt=tilt)
    assert a.tolist() == b.info["stratum_budgets"].tolist()
    c = select("slap", losses, feats, 30, generator=gen(5), tilt="softmax").info["stratum_budgets"]
    d = select("slap", 10 * losses + 3, feats, 30, generator=gen(5), tilt="softmax")
    assert c.tolist() != d.info["stratum_budgets"].tolist()  # the paper's tilt does


@pytest.mark.parametrize("method", ["slap", "kcenter"])
def test_many_exact_duplicates_near_a_full_budget(method):
    """Rounding makes some duplicate distances slightly negative; the greedy must still pick
    `budget` distinct rows (it once ran out of candidates on the demo's redundant data)."""
    base = torch.randn(5, 64, generator=gen(7))
    feats = base[torch.arange(300) % 5] * (1 + torch.arange(300)[:, None] % 3)
    sel = select(method, torch.rand(300, generator=gen(8)), feats, 280, generator=gen(9))
    assert len(set(sel.indices.tolist())) == 280
