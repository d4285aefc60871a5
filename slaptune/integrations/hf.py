"""SLAP inside ``transformers.Trainer``: ``SlapTrainer`` and ``SlapTrainingArguments``.

Selection happens in ``get_batch_samples``, the public hook through which Trainer pulls a whole
gradient-accumulation window before it counts the window's label tokens
(``num_items_in_batch``). The window is scored, the kept rows come back as the same number of
(smaller) micro-batches, and the token count is taken again over the kept rows, so the
accumulated gradient is exactly that of the token-mean loss over the kept rows. Nothing in
transformers, TRL, torch or the model is patched.

>>> from slaptune.integrations.hf import SlapTrainingArguments
>>> args = SlapTrainingArguments(output_dir="/tmp/x", method="slap", keep_ratio=0.7, use_cpu=True)
>>> args.selection_config().budget(32)
22
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, fields

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import get_last_checkpoint

from ..config import SelectionConfig
from ..engine import distributed as dist
from ..engine.ids import IdCollator, with_example_ids
from ..engine.rows import ID_KEY, WEIGHT_KEY
from ..engine.window import SelectionEngine
from ..score import adam_second_moment, capture_training_outputs

STATE_FILE = "slaptune_state_rank{rank}.pt"


def selection_config_of(args) -> SelectionConfig:
    """The ``SelectionConfig`` fields of any argument object that carries them."""
    return SelectionConfig(**{f.name: getattr(args, f.name) for f in fields(SelectionConfig)})


@dataclass
class SlapTrainingArguments(SelectionConfig, TrainingArguments):
    """``TrainingArguments`` plus every ``SelectionConfig`` field (same names as the CLI/YAML)."""

    def __post_init__(self):
        TrainingArguments.__post_init__(self)
        SelectionConfig.__post_init__(self)

    def selection_config(self) -> SelectionConfig:
        return selection_config_of(self)


class SlapStateCallback(TrainerCallback):
    """Saves the selection state (score table, counters) into each checkpoint folder."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        sel = self.trainer._slap
        if sel is not None:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, STATE_FILE.format(rank=dist.world()[1]))
            torch.save(sel.state_dict(), path + ".tmp")
            os.replace(path + ".tmp", path)  # never a half-written state file
        return control


class SlapTrainerMixin:
    """Put before ``Trainer`` (or ``SFTTrainer``) in the bases. Reads the selection settings from
    ``args`` (a ``SlapTrainingArguments`` / ``SlapSFTConfig``) or from ``selection=``."""

    def __init__(self, *args, selection: SelectionConfig | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.selection = selection or selection_config_of(self.args)
        self._check_supported()
        self.train_dataset = with_example_ids(self.train_dataset)
        self.data_collator = IdCollator(self.data_collator)
        self._slap: SelectionEngine | None = None
        self._slap_resume: str | None = None
        self._slap_queue: list = []  # kept micro-batches of a pool's later steps
        self._slap_tail = None  # a short last window pulled while filling a pool
        self.add_callback(SlapStateCallback(self))
        if self.callback_handler.pop_callback(ProgressCallback) is not None:
            self.add_callback(SlapProgressCallback(self))

    def _check_supported(self) -> None:
        for flag in ("packing", "padding_free"):
            if getattr(self.args, flag, False):
                raise ValueError(
                    f"{flag}=True puts several examples in one row, so rows cannot be selected; "
                    f"set {flag}=False to train with slaptune"
                )

    @property
    def slap_engine(self) -> SelectionEngine:
        if self._slap is None:
            tok = getattr(self, "processing_class", None)
            pad = getattr(tok, "pad_token_id", None)
            log = os.path.join(self.args.output_dir, "selection.jsonl")
            self._slap = SelectionEngine(
                self.selection,
                self.model,
                self.optimizer,
                pad_token_id=0 if pad is None else pad,
                dataset_size=len(self.train_dataset),
                log_path=log,
                seed=self.args.seed,  # the run's seed reaches selection (unless set apart)
                # Looked up at each call: the optimizer is created after the trainer.
                second_moment_fn=self._second_moment_deepspeed
                if self.is_deepspeed_enabled
                else lambda p: adam_second_moment(self.optimizer, p),
            )
            if self._slap_resume:
                path = os.path.join(self._slap_resume, STATE_FILE.format(rank=dist.world()[1]))
                if os.path.exists(path):
                    self._slap.load_state_dict(torch.load(path, weights_only=False))
        return self._slap

    def _second_moment_deepspeed(self, param):
        """DeepSpeed keeps optimizer state flattened and partitioned (``optimizer.state[p]`` is
        empty); this collective call returns the full tensor (every rank scores, so every rank
        calls it)."""
        from deepspeed.utils import safe_get_full_optimizer_state

        if self.state.global_step == 0:  # same answer on every rank: no collective call
            return None, "identity: no optimizer state yet (before the first step)"

        v = safe_get_full_optimizer_state(param, "exp_avg_sq")
        if v is None:
            return None, "identity: no DeepSpeed optimizer state yet"
        return v, "adam (deepspeed, not bias-corrected)"

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None and ID_KEY not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, ID_KEY]

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        self._slap_resume = resume_from_checkpoint or None
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        if self._slap_queue:  # the rest of a pool selected at an earlier step
            new = self._slap_queue.pop(0)
            return new, self._get_num_items_in_batch(new, device)
        windows = []
        for _ in range(self.selection.pool_windows):
            batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
            if not batches or (windows and len(batches) != len(windows[0])):
                if batches:  # a shorter last window: it is a pool of its own, after this one
                    self._slap_tail = batches
                break
            windows.append(batches)
        if not windows:
            if self._slap_tail is None:
                return [], num_items
            windows, self._slap_tail = [self._slap_tail], None
        windows = [[self._prepare_inputs(b) for b in w] for w in windows]
        state = self.state
        pools = self.slap_engine.select_pool(
            windows,
            step=state.global_step,
            epoch=int(state.epoch or 0),
            progress=state.global_step / max(state.max_steps, 1),
        )
        if self._slap_tail is not None:  # the epoch's short last window: a pool of its own
            tail, self._slap_tail = [self._prepare_inputs(b) for b in self._slap_tail], None
            pools += self.slap_engine.select_pool(
                [tail],
                step=state.global_step + len(windows),
                epoch=int(state.epoch or 0),
                progress=state.global_step / max(state.max_steps, 1),
            )
        self._slap_queue = pools[1:]
        return pools[0], self._get_num_items_in_batch(pools[0], device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = inputs.pop(ID_KEY, None)
        weights = inputs.pop(WEIGHT_KEY, None)
        recording = model.training and self._slap is not None and self._slap.reuse
        # Weighted or not, a training forward in reuse mode records its rows' scores
        # (InfoBatch's threshold is the mean over scores refreshed by every training forward).
        with capture_training_outputs(self.model) if recording else nullcontext({}) as store:
            if weights is not None and model.training:
                loss = self._weighted_loss(model, inputs, weights, num_items_in_batch)
                outputs = None
            else:
                out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
                loss, outputs = out if return_outputs else (out, None)
        if recording and ids is not None:
            self._slap.record_training_forward(
                ids, store["hidden"], inputs["labels"], store.get("logits")
            )
        return (loss, outputs) if return_outputs else loss

    def _weighted_loss(self, model, inputs, weights, num_items_in_batch):
        """Token-sum loss with per-row weights (InfoBatch's rescaling), normalised like Trainer:
        by the window's token count across ranks, times the number of processes."""
        labels = inputs["labels"]
        keys = ("input_ids", "attention_mask", "position_ids", "token_type_ids")
        logits = model(**{k: v for k, v in inputs.items() if k in keys}, use_cache=False).logits
        tok = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), labels[:, 1:], reduction="none"
        )
        total = (tok.sum(1) * weights.to(tok.dtype)).sum()
        if num_items_in_batch is None:
            return total / (labels[:, 1:] != -100).sum().clamp(min=1)
        loss = total / num_items_in_batch
        if self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss

    def log(self, logs, *args, **kwargs):
        if self._slap is not None and "loss" in logs:
            logs.update({k: v for k, v in self._slap.pop_interval_stats().items() if v is not None})
        return super().log(logs, *args, **kwargs)


class SlapProgressCallback(ProgressCallback):
    """Trainer's progress bar, with the running kept / seen share as its postfix."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        sel = self.trainer._slap
        if self.training_bar is not None and sel is not None and sel.ledger.samples_seen:
            ledger = sel.ledger
            self.training_bar.set_postfix(
                kept=f"{ledger.samples_trained}/{ledger.samples_seen}", refresh=False
            )


class SlapTrainer(SlapTrainerMixin, Trainer):
    """``transformers.Trainer`` that trains each step only on the rows SLAP (or the configured
    baseline) keeps. Use with ``SlapTrainingArguments``."""
