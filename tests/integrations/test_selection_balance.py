"""The kept set tracks the pool, not the gradient's size: the review's short-answer check.

A tiny Llama is trained briefly with AdamW on a small part of its vocabulary (so most output
rows keep an Adam second moment near 0, as untrained vocabulary rows do in a real run). Then
windows of 32 rows, half with 2 answer tokens and half with 48 drawn from the same tokens, go
through the public ``SlapSelector`` at keep 0.5. A token-mean gradient's norm scales like
1/sqrt(answer tokens), so features that measure size make farthest-point selection keep short
answers; features that measure direction keep them at about the pool's share (0.5).
"""

import pytest
import torch

from slaptune import SelectionConfig
from slaptune.integrations.pytorch import SlapSelector
from slaptune.models.presets import build_model

VOCAB, USED, PROMPT = 512, 64, 8


def rows(g, n, answer):
    ids = torch.randint(3, USED, (n, PROMPT + 48), generator=g)
    labels = ids.clone()
    labels[:, :PROMPT] = -100
    labels[:, PROMPT + answer :] = -100
    mask = torch.ones_like(ids)
    mask[:, PROMPT + answer :] = 0
    return ids, mask, labels


def window(g):
    s, l = rows(g, 16, 2), rows(g, 16, 48)
    return {
        k: torch.cat([a, b]) for k, a, b in zip(("input_ids", "attention_mask", "labels"), s, l)
    }


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = build_model("llama-tiny", VOCAB, seed=0, max_positions=64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        b = window(g)
        loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def kept_short_share(model, opt, method, windows=12, **cfg):
    sel = SlapSelector(model, opt, SelectionConfig(method=method, keep_ratio=0.5, **cfg))
    g = torch.Generator().manual_seed(2)
    short = kept = 0
    for step in range(windows):
        b = window(g)
        b["slap_id"] = torch.arange(32)
        sub = sel.select(b, step=step)
        short += int((sub["slap_id"] < 16).sum())
        kept += sub["slap_id"].numel()
    return short / kept


@pytest.mark.parametrize("method", ["slap", "kcenter"])
def test_kept_short_share_tracks_the_pool(trained, method):
    share = kept_short_share(*trained, method)
    assert 0.40 <= share <= 0.60, share


def test_raw_size_features_would_fail_the_check(trained):
    """The check can fail: with the old features (no floor, no unit norm) k-center keeps
    mostly short answers."""
    share = kept_short_share(*trained, "kcenter", feature_norm="none", precondition_floor=0.0)
    assert share > 0.65, share
