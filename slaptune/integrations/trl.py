"""SLAP inside TRL's ``SFTTrainer``: ``SlapSFTTrainer`` and ``SlapSFTConfig``.

The same mixin as ``slaptune.integrations.hf``: TRL's loss is normalised by
``num_items_in_batch`` exactly like Trainer's, so selecting in ``get_batch_samples`` composes with
its fused LM head unchanged. Packing and padding-free batches are refused (rows are not examples).

Mind ``SFTConfig``'s defaults on a CPU: ``bf16=True`` and ``gradient_checkpointing=True``; pass
``bf16=False, use_cpu=True`` for exact numerics there.
"""

from __future__ import annotations

from dataclasses import dataclass

from trl import SFTConfig, SFTTrainer

from ..config import SelectionConfig
from .hf import SlapTrainerMixin, selection_config_of


@dataclass
class SlapSFTConfig(SelectionConfig, SFTConfig):
    """``SFTConfig`` plus every ``SelectionConfig`` field."""

    def __post_init__(self):
        SFTConfig.__post_init__(self)
        SelectionConfig.__post_init__(self)

    def selection_config(self) -> SelectionConfig:
        return selection_config_of(self)


class SlapSFTTrainer(SlapTrainerMixin, SFTTrainer):
    """``trl.SFTTrainer`` that trains each step only on the rows SLAP keeps."""
