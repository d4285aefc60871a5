"""``WindowScorer``: the per-example signals of a window, fresh or recorded (reuse mode).

Fresh: a no-grad forward of the current model in eval mode (optionally under bf16 autocast),
per-example losses and gradient features from its logits and final hidden states, or, with
``feature_source="lora"``, from the last LoRA modules. Reuse: the losses and features each row
had in its own training forward, kept in a ``ScoreTable`` that is identical on every rank.
"""

from __future__ import annotations

import contextlib

import torch

from ..config import SelectionConfig
from ..score import (
    HeadGradientSketch,
    adam_second_moment,
    capture_head_input,
    example_losses,
    output_layer,
)
from ..score.lora import LoraGradientSketch
from . import distributed as dist
from .ledger import ComputeLedger
from .rows import supervised_tokens
from .score_table import ScoreTable

MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "position_ids", "token_type_ids")


def model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in MODEL_INPUT_KEYS}


class WindowScorer:
    """Losses and features for the rows of a window; see the module docstring."""

    def __init__(
        self,
        config: SelectionConfig,
        model,
        optimizer,
        ledger: ComputeLedger,
        *,
        needs_features: bool,
        dataset_size: int | None,
        second_moment_fn=None,
        seed: int = 0,
    ):
        self.config, self.model, self.optimizer, self.ledger = config, model, optimizer, ledger
        self.seed = seed  # of the sketch projections: the run's selection seed
        self.needs_features = needs_features
        if config.scoring == "reuse" and not dataset_size:
            raise ValueError("scoring='reuse' needs dataset_size (the number of training examples)")
        self.table = ScoreTable(dataset_size) if config.scoring == "reuse" else None
        self.pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        self.second_moment_fn = second_moment_fn or (
            lambda p: adam_second_moment(self.optimizer, p)
        )
        self._sketch: HeadGradientSketch | None = None
        self._lora: LoraGradientSketch | None = None

    def sketch(self) -> HeadGradientSketch:
        if self._sketch is None:
            w = output_layer(self.model).weight
            v, d = getattr(w, "ds_shape", w.shape)
            self._sketch = HeadGradientSketch(
                v,
                d,
                self.config.sketch_vocab,
                self.config.sketch_hidden,
                self.seed,
            )
        return self._sketch

    def features_from(self, logits, hidden, labels):
        """``(features, losses, valid, how)`` from one pass over the supervised tokens."""
        weight = output_layer(self.model).weight
        second, how = (None, "identity")
        if self.config.precondition != "none":
            second, how = self.second_moment_fn(weight)
        sketch, mode = self.sketch(), self.config.precondition
        floor = self.config.precondition_floor
        # Sketch FLOPs per supervised token: p @ R_V, h @ R_d and the outer product.
        v, d = sketch.r_vocab.shape[0], sketch.r_hidden.shape[0]
        per_token = 2.0 * (v * sketch.kv + d * sketch.kd + sketch.kv * sketch.kd)
        self.ledger.flops_scoring += per_token * float(supervised_tokens(labels).sum())
        if mode == "adam_exact":
            feats = sketch(logits, hidden, labels, second, precondition=mode, floor=floor)
            return (feats, *example_losses(logits, labels), how)
        feats = sketch.with_losses(logits, hidden, labels, second, precondition=mode, floor=floor)
        return (*feats, how)

    def score_batch(self, batch: dict):
        """Fresh no-grad forward of one micro-batch: ``(losses, valid, features | None, how)``."""
        if self.needs_features and self.config.feature_source == "lora":
            return self._score_lora(batch)
        with torch.no_grad():
            return self._score_head(batch)

    def _score_lora(self, batch: dict):
        if self._lora is None:
            self._lora = LoraGradientSketch(
                self.config.sketch_vocab, self.config.lora_modules, self.seed
            )
        was_training = self.model.training
        self.model.eval()
        try:
            moments = None if self.config.precondition == "none" else self.second_moment_fn
            feats, losses, valid = self._lora(
                self.model,
                model_inputs(batch),
                batch["labels"],
                moments,
                floor=self.config.precondition_floor,
            )
        finally:
            self.model.train(was_training)
        self.ledger.scoring_forwards += 1
        return losses, valid, feats, "lora/" + self._lora.last_preconditioner

    def _score_head(self, batch: dict):
        was_training = self.model.training
        self.model.eval()
        autocast = (
            torch.autocast(batch["input_ids"].device.type, dtype=torch.bfloat16)
            if self.config.score_dtype == "bfloat16"
            else contextlib.nullcontext()
        )
        try:
            with capture_head_input(output_layer(self.model)) as store, autocast:
                logits = self.model(**model_inputs(batch), use_cache=False).logits
            feats, how = (None, "")
            if self.needs_features:
                feats, losses, valid, how = self.features_from(
                    logits, store["hidden"], batch["labels"]
                )
            else:
                losses, valid = example_losses(logits, batch["labels"])
        finally:
            self.model.train(was_training)
        self.ledger.scoring_forwards += 1
        return losses, valid, feats, how

    def record_training_forward(self, ids, hidden, labels, logits=None) -> None:
        """Reuse mode: remember the loss (and feature) of rows just trained on, from the training
        forward's own outputs. Fused-head trainers (TRL) never build the logits; then they are
        recomputed from the final hidden states (one output-layer product, counted as scoring
        FLOPs)."""
        if self.table is None:
            return
        with torch.no_grad():
            if logits is None:
                w = output_layer(self.model).weight
                logits = torch.nn.functional.linear(hidden.detach().to(w.dtype), w)
                self.ledger.flops_scoring += 2.0 * w.numel() * hidden.shape[0] * hidden.shape[1]
            logits = logits.detach()
            feats = None
            if self.needs_features:
                feats, losses, _, _ = self.features_from(logits, hidden.detach(), labels)
            else:
                losses, _ = example_losses(logits, labels)
        self.pending.append((ids.cpu(), losses.cpu(), None if feats is None else feats.cpu()))

    def flush_pending(self, epoch: int) -> None:
        """Apply every rank's recorded scores to every rank's table (one gather per window)."""
        if self.table is None:
            return
        if self.pending:
            ids = torch.cat([p[0] for p in self.pending])
            losses = torch.cat([p[1] for p in self.pending])
            feats = None if self.pending[0][2] is None else torch.cat([p[2] for p in self.pending])
        else:
            ids, losses = torch.empty(0, dtype=torch.long), torch.empty(0)
            d = self.config.sketch_vocab * self.config.sketch_hidden
            feats = torch.empty(0, d) if self.needs_features else None
        self.pending = []
        device = next(self.model.parameters()).device  # NCCL gathers device tensors only
        ids, losses = (dist.gather_rows(t.to(device)).cpu() for t in (ids, losses))
        feats = None if feats is None else dist.gather_rows(feats.to(device)).cpu()
        if ids.numel():
            self.table.update(ids, losses, feats, epoch)
