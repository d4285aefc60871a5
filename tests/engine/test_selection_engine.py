"""The engine's behaviour: selection is a function of the candidate set and the seed; pools;
independent random streams; a toy method registered once runs everywhere."""

import pytest
import torch

from slaptune import SelectionConfig
from slaptune.engine.window import STREAM_SELECT, STREAM_UNSCORED, selection_generator
from slaptune.integrations.pytorch import SlapSelector
from slaptune.models.presets import build_model
from slaptune.select import Selection, register, unregister
from tests.conftest import prompt_completion_batch


def batch(n=16, seed=0):
    ids, labels = prompt_completion_batch(n, 12, 64, seed)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "slap_id": torch.arange(n) + 100,
    }


def shuffled(b, perm):
    return {k: v[perm] for k, v in b.items()}


@pytest.fixture(scope="module")
def model():
    return build_model("llama-tiny", 64, seed=0)


@pytest.mark.parametrize("method", ["slap", "kcenter", "ccs", "random", "selective_backprop"])
def test_selection_does_not_depend_on_the_order_of_the_rows(model, method):
    """Same candidates in another order (another rank layout, another loader order): same
    kept examples."""
    b = batch()
    kept = []
    for seed in range(3):
        perm = torch.randperm(16, generator=torch.Generator().manual_seed(seed))
        sel = SlapSelector(model, None, SelectionConfig(method=method, keep_ratio=0.5))
        kept.append(sorted(sel.select(shuffled(b, perm), step=7)["slap_id"].tolist()))
    assert kept[0] == kept[1] == kept[2]


def test_the_seed_reaches_selection(model):
    b = batch()

    def kept(**kw):
        cfg = SelectionConfig(method="random", keep_ratio=0.5, **kw.pop("cfg", {}))
        return sorted(SlapSelector(model, None, cfg, **kw).select(b, step=0)["slap_id"].tolist())

    assert kept(seed=0) != kept(seed=1)
    assert kept(seed=0) == kept(seed=0)
    assert kept(seed=5, cfg={"selection_seed": 1}) == kept(seed=1)  # an explicit one wins


def test_streams_of_one_step_are_independent():
    a = torch.rand(8, generator=selection_generator(3, 4, STREAM_SELECT))
    b = torch.rand(8, generator=selection_generator(3, 4, STREAM_UNSCORED))
    assert not torch.equal(a, b)
    assert not torch.equal(a, torch.rand(8, generator=selection_generator(3, 5)))


def test_a_pool_of_windows_selects_once_and_feeds_every_step_equally(model):
    big = batch(32)
    parts = [{k: v[i * 8 : (i + 1) * 8] for k, v in big.items()} for i in range(4)]
    cfg = SelectionConfig(method="slap", keep_ratio=0.5, pool_windows=4)
    out = SlapSelector(model, None, cfg).select_pool(parts, step=0)
    assert [o["input_ids"].shape[0] for o in out] == [4, 4, 4, 4]
    pooled = sorted(i for o in out for i in o["slap_id"].tolist())
    assert len(set(pooled)) == 16
    # The same selection as over one 32-row window: it is a function of the candidate set.
    whole = SlapSelector(model, None, SelectionConfig(method="slap", keep_ratio=0.5))
    assert pooled == sorted(whole.select(big, step=0)["slap_id"].tolist())


def test_a_registered_toy_method_runs_through_the_config_and_the_engine(model):
    @register("lowest_ids", uses_losses=False)
    def lowest_ids(losses, features, budget, generator, *, offset: int = 0) -> Selection:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        return Selection(torch.arange(offset, offset + budget))

    try:
        with pytest.raises(ValueError, match="offset must be >= 0"):
            SelectionConfig(method="lowest_ids").spec.check({"offset": -1})
        cfg = SelectionConfig(method="lowest_ids", keep_ratio=0.25)
        assert "num_strata" in cfg.ignored_settings() and "scoring" in cfg.ignored_settings()
        sel = SlapSelector(model, None, cfg)
        sub = sel.select(batch(), step=0)
        assert sub["slap_id"].tolist() == [100, 101, 102, 103]  # ids in id order
        assert sel.ledger.scoring_forwards == 0  # reads no losses: nothing scored
        from slaptune.pipeline.bench import expand  # the bench derives from the spec too

        grid = {"method": ["lowest_ids"], "num_strata": [3, 5], "keep_ratio": [0.5]}
        assert expand({"grid": grid}) == [{"keep_ratio": 0.5, "method": "lowest_ids"}]
    finally:
        unregister("lowest_ids")


def test_sampled_unscored_rows_prune_an_odd_first_window(model):
    """reuse_unscored='sample' on a window nobody has scored yet, with a keep count that is
    not a whole number of units: it prunes (it used to train the whole window)."""
    cfg = SelectionConfig(method="slap", keep_ratio=0.6, scoring="reuse", reuse_unscored="sample")
    sel = SlapSelector(model, None, cfg, dataset_size=200)
    b = batch(32)
    parts = [{k: v[i * 16 : (i + 1) * 16] for k, v in b.items()} for i in range(2)]
    out = sel.engine.select_window(parts, step=0)  # 2 micro-batches: unit 2, round(0.6 x 32) = 19
    kept = sum(o["input_ids"].shape[0] for o in out)
    assert kept == 18 and sel.engine.last_record["forced_unscored"] == 18
