"""SLAP in your own PyTorch loop (also under Accelerate or torchrun DDP), in a few lines.

>>> import torch
>>> from slaptune import SelectionConfig
>>> from slaptune.integrations.pytorch import SlapSelector
>>> from slaptune.models.presets import build_model
>>> model = build_model("llama-tiny", vocab_size=64)
>>> opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
>>> selector = SlapSelector(model, opt, SelectionConfig(keep_ratio=0.5))
>>> ids = torch.randint(3, 64, (8, 12))
>>> batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
>>> sub = selector.select(batch, step=0)     # score, select, keep 4 of 8 rows
>>> loss = selector.loss(model, sub)         # token-mean over the kept rows
>>> loss.backward(); opt.step(); opt.zero_grad()
>>> sub["input_ids"].shape[0]
4

Under DDP or Accelerate, pass the unwrapped model to ``SlapSelector`` and the wrapped one to
``loss``; selection is global (every rank gets an even share of the same kept set) and the loss
is ``local token sum / global token count * world size``, so DDP's gradient averaging yields the
token-mean over all kept rows. Call ``accelerator.backward(loss)`` as usual.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..config import SelectionConfig
from ..engine import distributed as dist
from ..engine.rows import ID_KEY, WEIGHT_KEY
from ..engine.window import MODEL_INPUT_KEYS, SelectionEngine
from ..score import capture_last_hidden, token_loss_sums
from .features import FallbackWarner, resolve_feature_source


class SlapSelector:
    """Select the rows to train on from each batch (one batch = one candidate pool).

    Args:
        model: the (unwrapped) model to score with.
        optimizer: its optimizer (Adam state preconditions the gradient features).
        config: the selection settings.
        pad_token_id: used when rows of different length are stacked (DDP).
        dataset_size: number of training examples; required for ``scoring="reuse"``, whose
            batches must carry ``slap_id`` (see ``slaptune.engine.with_example_ids``).
        log_path: optional JSONL selection log.
        seed: seed of the selection (used when ``config.selection_seed`` is None); pass your
            run's seed so that seeds reach every source of randomness.
    """

    def __init__(
        self,
        model,
        optimizer=None,
        config: SelectionConfig | None = None,
        *,
        pad_token_id: int = 0,
        dataset_size: int | None = None,
        log_path: str | None = None,
        seed: int = 0,
    ):
        self.config = resolve_feature_source(config or SelectionConfig(), model)
        self.model = model
        self._fallback = FallbackWarner(self.config)
        self.engine = SelectionEngine(
            self.config,
            model,
            optimizer,
            pad_token_id=pad_token_id,
            dataset_size=dataset_size,
            log_path=log_path,
            seed=seed,
        )

    @property
    def ledger(self):
        """Samples, tokens, FLOPs and time so far (``ledger.summary()``)."""
        return self.engine.ledger

    def select(self, batch: dict, *, step: int, epoch: int = 0, progress: float = 0.0) -> dict:
        """The kept rows of ``batch`` (this rank's share), with ``slap_weight`` where the method
        reweights. Without ``slap_id`` in the batch (fresh scoring only) rows are numbered by
        their position in the global batch."""
        batch = self._with_ids(batch, 0)
        out = self.engine.select_window([batch], step=step, epoch=epoch, progress=progress)[0]
        self._after_selection(batch["input_ids"].device, step)
        return out

    def select_pool(
        self, batches: list[dict], *, step: int, epoch: int = 0, progress: float = 0.0
    ) -> list[dict]:
        """Select once over several batches (one per coming optimizer step, ``step`` the
        first): a larger pool for the same number of steps. Returns one kept batch per step,
        each the same size (``pool_windows`` in the config is the trainers' version)."""
        size = batches[0]["input_ids"].shape[0]
        batches = [self._with_ids(b, j * size) for j, b in enumerate(batches)]
        out = self.engine.select_pool(
            [[b] for b in batches], step=step, epoch=epoch, progress=progress
        )
        self._after_selection(batches[0]["input_ids"].device, step)
        return [w[0] for w in out]

    def _after_selection(self, device, step: int) -> None:
        if dist.world()[0] > 1:  # sketch FLOPs are per rank until summed
            self.engine.ledger.sum_over_ranks(lambda x: dist.sum_float(x, device))
        self._fallback.check(self.engine.last_record.get("features"), step)

    def _with_ids(self, batch: dict, offset: int) -> dict:
        if ID_KEY in batch:
            return batch
        if self.config.scoring == "reuse":
            raise ValueError(
                "scoring='reuse' needs example ids: wrap the dataset with "
                "slaptune.engine.with_example_ids and its collator with IdCollator"
            )
        ids = torch.arange(batch["input_ids"].shape[0], device=batch["input_ids"].device)
        return {**batch, ID_KEY: ids + offset}

    def loss(self, model, batch: dict) -> torch.Tensor:
        """Token-mean cross-entropy over the kept rows of every rank (weighted where the method
        weights), ready for ``backward``; in reuse mode it records the rows' scores too."""
        labels = batch["labels"]
        recording = self.engine.table is not None and ID_KEY in batch
        with capture_last_hidden(self.model) if recording else nullcontext({}) as store:
            inputs = {k: v for k, v in batch.items() if k in MODEL_INPUT_KEYS}
            logits = model(**inputs, use_cache=False).logits
        per_row, count = token_loss_sums(logits, labels)
        if WEIGHT_KEY in batch:
            per_row = per_row * batch[WEIGHT_KEY].to(per_row.dtype)
        world, _ = dist.world()
        global_count = dist.all_reduce_sum(count.detach()).clamp(min=1)
        if recording:
            self.engine.record_training_forward(batch[ID_KEY], store["hidden"], labels, logits)
        return per_row.sum() / global_count * world

    def state_dict(self) -> dict:
        """Tensors and plain numbers only: save it with ``torch.save`` and read it back with
        ``torch.load(path, weights_only=True)`` (never unpickle a file you did not write)."""
        return self.engine.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.engine.load_state_dict(state)
