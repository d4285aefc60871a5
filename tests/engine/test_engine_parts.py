"""The engine's parts on their own: budget arithmetic, score table, ledger, row splitting."""

import pytest
import torch

from slaptune.engine import ComputeLedger, ScoreTable
from slaptune.engine.budget import kept_count, per_step_counts
from slaptune.engine.rows import split_rows, stack_rows


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((22, 32, 0, 32, 2), 22),  # plain: the budget, already a multiple of the unit
        ((23, 32, 0, 32, 4), 24),  # rounded to the unit
        ((1, 32, 0, 32, 4), 4),  # at least one unit
        ((10, 32, 20, 32, 2), 20),  # never fewer than the forced rows
        ((10, 32, 21, 32, 4), 24),  # forced rows rounded up to the unit
        ((32, 32, 0, 32, 2), None),  # keeps all: trained whole
        ((3, 3, 0, 3, 4), None),  # fewer valid rows than one unit
        ((20, 30, 0, 32, 4), 20),  # rows without a target are never kept
        ((29, 30, 0, 32, 4), 28),  # ... nor counted toward the unit rounding
    ],
)
def test_kept_count(args, expected):
    assert kept_count(*args) == expected


def test_kept_count_gives_every_step_of_a_pool_a_unit():
    assert kept_count(2, 64, 0, 64, 4, steps=4) == 16
    assert kept_count(2, 12, 0, 16, 4, steps=4) is None  # cannot feed 4 steps
    with pytest.raises(ValueError):
        kept_count(2, 12, 0, 16, 0)


def test_per_step_counts_share_whole_units():
    assert per_step_counts(44, 2, 4) == [12, 12, 10, 10]
    assert sum(per_step_counts(96, 8, 3)) == 96
    with pytest.raises(ValueError):
        per_step_counts(6, 4, 1)  # not whole units


def test_score_table_update_lookup_staleness_and_state():
    t = ScoreTable(5)
    t.update(torch.tensor([1, 3]), torch.tensor([2.0, 4.0]), torch.eye(2), epoch=0)
    have, losses, feats = t.lookup(torch.tensor([0, 1, 3]), epoch=0)
    assert have.tolist() == [False, True, True]
    assert losses[1:].tolist() == [2.0, 4.0] and feats.shape == (3, 2)
    assert t.mean_loss() == 3.0
    have, _, _ = t.lookup(torch.tensor([1]), epoch=3, max_staleness=2)
    assert have.tolist() == [False]  # older than 2 epochs: treated as missing
    u = ScoreTable(5)
    u.load_state_dict(t.state_dict())
    assert torch.equal(u.losses.nan_to_num(-1), t.losses.nan_to_num(-1))
    with pytest.raises(ValueError, match="out of range"):
        t.update(torch.tensor([5]), torch.tensor([1.0]), None, epoch=0)


def test_ledger_counts_flops_and_round_trips():
    led = ComputeLedger(params=10, trainable_params=10)
    led.add_window(seen=4, trained=2, tokens_seen=40, tokens_trained=20, scored_tokens=40)
    assert led.flops_scoring == 2 * 10 * 40 and led.flops_training == 6 * 10 * 20
    s = led.summary()
    assert s["kept_share"] == 0.5 and s["flops_total"] == 800 + 1200
    lora = ComputeLedger(params=10, trainable_params=1)
    lora.add_window(1, 1, 5, 5, 0)
    assert lora.flops_training == 4 * 10 * 5  # frozen base: no weight-gradient products
    other = ComputeLedger()
    other.load_state_dict(led.state_dict())
    assert other.samples_trained == 2 and other.flops_training == led.flops_training


def test_split_rows_trims_each_part_to_its_longest_row():
    a = {"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5)}
    b = {"input_ids": torch.ones(3, 2, dtype=torch.long), "attention_mask": torch.ones(3, 2)}
    rows = stack_rows([a, b], pad_token_id=0)
    parts = split_rows(rows, 2)
    assert [p["input_ids"].shape for p in parts] == [torch.Size([3, 5]), torch.Size([2, 2])]
    assert int(sum(p["attention_mask"].sum() for p in parts)) == 16
