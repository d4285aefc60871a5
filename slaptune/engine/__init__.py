"""The selection engine: one gradient-accumulation window in, the kept micro-batches out.

Every integration (HF Trainer, TRL, a plain loop) shares it. Its rooms:

- ``window``: ``SelectionEngine``, the per-window loop (score, gather, select, deal, log).
- ``scorer``: ``WindowScorer``, the window's losses and features (fresh forward or recorded).
- ``score_table``: ``ScoreTable``, every example's last recorded score (reuse mode).
- ``rows``: stacking, splitting and taking rows of a batch.
- ``ids``: example ids on the dataset and through the collator.
- ``ledger``: ``ComputeLedger``, samples, tokens, FLOPs and wall-clock.
- ``distributed``: every ``torch.distributed`` call of the package.

It imports torch, ``slaptune.config``, ``slaptune.select`` and ``slaptune.score`` only.

>>> from slaptune.engine import SelectionEngine, ComputeLedger
>>> ComputeLedger().summary()["samples_seen"]
0
"""

from .ids import IdCollator, with_example_ids
from .ledger import ComputeLedger
from .rows import ID_KEY, WEIGHT_KEY
from .score_table import ScoreTable
from .window import SelectionEngine

__all__ = [
    "ID_KEY",
    "WEIGHT_KEY",
    "ComputeLedger",
    "IdCollator",
    "ScoreTable",
    "SelectionEngine",
    "with_example_ids",
]
