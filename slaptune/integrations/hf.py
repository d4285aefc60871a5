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

import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import TrainOutput

from ..config import SelectionConfig
from ..engine import distributed as dist
from ..engine.ids import IdCollator, with_example_ids
from ..engine.rows import ID_KEY, WEIGHT_KEY
from ..engine.selection_log import truncate_log
from ..engine.window import SelectionEngine
from ..score import adam_second_moment, capture_training_outputs, token_loss_sums
from . import checkpoints as ckpt
from .features import FallbackWarner, console, resolve_feature_source

LOGGED_LEDGER_KEYS = (
    "samples_seen",
    "samples_trained",
    "tokens_seen",
    "tokens_trained",
    "flops_scoring",
    "flops_training",
)
# TrainingArguments that change what is trained on or how: a resume with other values is refused.
TRAINING_SETTINGS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "data_seed",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "bf16",
    "fp16",
)


def selection_config_of(args) -> SelectionConfig:
    """The ``SelectionConfig`` fields of any argument object that carries them."""
    return SelectionConfig(**{f.name: getattr(args, f.name) for f in fields(SelectionConfig)})


@dataclass
class SlapTrainingArguments(SelectionConfig, TrainingArguments):
    """``TrainingArguments`` plus every ``SelectionConfig`` field (same names as the CLI/YAML).
    ``ddp_timeout`` defaults to ``SLAPTUNE_DIST_TIMEOUT_S`` (600 s) instead of 30 minutes."""

    def __post_init__(self):
        if self.ddp_timeout == 1800:  # transformers' default: a hung rank would block 30 min
            self.ddp_timeout = dist.timeout_s()
        if self.use_cpu:
            dist.start_cpu_group(self.ddp_backend, self.ddp_timeout)
        TrainingArguments.__post_init__(self)
        SelectionConfig.__post_init__(self)

    def selection_config(self) -> SelectionConfig:
        return selection_config_of(self)


class SlapTrainerMixin:
    """Put before ``Trainer`` (or ``SFTTrainer``) in the bases. Reads the selection settings from
    ``args`` (a ``SlapTrainingArguments`` / ``SlapSFTConfig``) or from ``selection=``.

    Checkpoints: the selection state is written into each ``checkpoint-N`` before the Trainer's
    own files (``slaptune.integrations.checkpoints``); ``train(resume_from_checkpoint=True)``
    resumes from the newest complete checkpoint, rolls ``selection.jsonl`` back to it, and
    refuses settings that differ from the checkpoint's unless ``allow_settings_change=True``.
    """

    def __init__(self, *args, selection: SelectionConfig | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.selection = selection or selection_config_of(self.args)
        self._configured = self.selection  # before any automatic feature-source switch
        self._check_supported()
        self.train_dataset = with_example_ids(self.train_dataset)
        self.data_collator = IdCollator(self.data_collator)
        self._slap: SelectionEngine | None = None
        self._slap_pending_state: dict | None = None
        self._fallback = FallbackWarner(self.selection)
        self.allow_settings_change = False
        # More settings a resume must keep (the CLI adds model, data and LoRA settings).
        self.slap_extra_settings: dict = {}
        self._prior = {"global_step": 0, "loss_sum": 0.0, "wall_clock_s": 0.0}
        self._slap_t0 = time.perf_counter()
        self._slap_queue: list = []  # kept micro-batches of a pool's later steps
        self._slap_tail = None  # a short last window pulled while filling a pool
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
            self.selection = resolve_feature_source(self.selection, self.model)
            tok = getattr(self, "processing_class", None)
            pad = getattr(tok, "pad_token_id", None)
            self._slap = SelectionEngine(
                self.selection,
                self.model,
                self.optimizer,
                pad_token_id=0 if pad is None else pad,
                dataset_size=len(self.train_dataset),
                log_path=self._log_path(),
                seed=self.args.seed,  # the run's seed reaches selection (unless set apart)
                # Looked up at each call: the optimizer is created after the trainer.
                second_moment_fn=self._second_moment_deepspeed
                if self.is_deepspeed_enabled
                else lambda p: adam_second_moment(self.optimizer, p),
            )
            if self._slap_pending_state is not None:
                self._slap.load_state_dict(self._slap_pending_state)
                self._slap_pending_state = None
        return self._slap

    def _log_path(self) -> str:
        return os.path.join(self.args.output_dir, "selection.jsonl")

    # ---- checkpoints and resume ---------------------------------------------------------------

    def slap_settings(self) -> dict:
        """The settings a resume must keep (selection and training), JSON-normalised."""
        sel = {k: v for k, v in self._configured.selection_fields().items() if k != "selection_log"}
        train = {k: getattr(self.args, k, None) for k in TRAINING_SETTINGS}
        train["world_size"] = self.args.world_size
        train["dataset_size"] = len(self.train_dataset)
        both = {**sel, **train, **self.slap_extra_settings}
        return json.loads(json.dumps(both, default=str))

    @property
    def slap_wall_clock_s(self) -> float:
        """Wall-clock of the whole run: the parts before the resumed checkpoint plus this one."""
        return self._prior["wall_clock_s"] + time.perf_counter() - self._slap_t0

    def _sync_flops(self) -> None:
        if self._slap is not None and dist.world()[0] > 1:
            device = self.args.device
            self._slap.ledger.sum_over_ranks(lambda x: dist.sum_float(x, device))

    def _save_checkpoint(self, model, trial):
        folder = os.path.join(
            self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}"
        )
        self._save_selection_state(folder)
        return super()._save_checkpoint(model, trial)

    def _save_selection_state(self, folder: str) -> None:
        """Before any Trainer file: a reused folder (an earlier interrupted save) loses its
        ``trainer_state.json`` first, so it cannot pass as complete while half rewritten."""
        engine = self.slap_engine
        self._sync_flops()
        world, rank = dist.world()
        if self.args.should_save and os.path.exists(os.path.join(folder, ckpt.TRAINER_STATE)):
            os.remove(os.path.join(folder, ckpt.TRAINER_STATE))
        loss_now = float(getattr(self, "_total_loss_scalar", 0.0))
        tr_loss = getattr(self, "_tr_loss", None)
        if isinstance(tr_loss, torch.Tensor):
            loss_now += float(tr_loss.item())
        meta = {
            "global_step": self.state.global_step,
            "world_size": world,
            "loss_sum": self._prior["loss_sum"] + loss_now,
            "wall_clock_s": self.slap_wall_clock_s,
            "settings": self.slap_settings(),
        }
        ckpt.save_state(folder, rank, engine.state_dict(), meta)
        dist.barrier()  # every rank's state is on disk before rank 0 writes trainer_state.json

    def _check_checkpoint(self, folder: str) -> str | None:
        return ckpt.check_folder(
            folder, needs_optimizer=not self.args.save_only_model and not self.is_deepspeed_enabled
        )

    def _resume_point(self, resume) -> str:
        """The checkpoint to resume from (validated), its state loaded and checked."""
        if resume is True:
            path, skipped = ckpt.choose_checkpoint(self.args.output_dir, self._check_checkpoint)
            for name, why in skipped:
                console(f"skipping {name}: {why}")
            if skipped:
                console(f"resuming from {os.path.basename(path)}")
        else:
            path = str(resume)
            why = self._check_checkpoint(path)
            if why is not None:
                raise ValueError(f"cannot resume from {path}: {why}; pick an earlier checkpoint")
        state, meta = ckpt.load_state(path, dist.world()[1])
        diff = ckpt.settings_diff(meta.get("settings", {}), self.slap_settings())
        if diff and not self.allow_settings_change:
            raise ValueError(
                f"--resume: settings differ from {path}: {diff}; resume with the checkpoint's "
                "settings, or pass --resume-override (allow_settings_change=True) to accept them"
            )
        if diff:
            console(f"resuming {path} with changed settings: {diff}")
        self._prior = {k: meta.get(k, 0) for k in ("global_step", "loss_sum", "wall_clock_s")}
        if self._slap is not None:
            self._slap.load_state_dict(state)
        else:
            self._slap_pending_state = state
        self._roll_back_log(meta["global_step"])
        return path

    def _roll_back_log(self, step: int) -> None:
        if not dist.is_main_process() or not self.selection.selection_log:
            return
        _, dropped, torn = truncate_log(self._log_path(), step)
        if torn:
            console(f"selection.jsonl: dropped {torn} torn line(s)")

    def train(self, resume_from_checkpoint=None, *args, allow_settings_change=None, **kwargs):
        """``Trainer.train``; ``allow_settings_change=True`` accepts a resume whose settings differ
        from the checkpoint's. ``training_loss`` is that of the whole run, resumed or not."""
        if allow_settings_change is not None:
            self.allow_settings_change = allow_settings_change
        self._slap_t0 = time.perf_counter()
        self._prior = {"global_step": 0, "loss_sum": 0.0, "wall_clock_s": 0.0}
        if resume_from_checkpoint:
            resume_from_checkpoint = self._resume_point(resume_from_checkpoint)
        else:
            resume_from_checkpoint = None
            self._roll_back_log(0)  # a fresh run starts a fresh log
        result = super().train(resume_from_checkpoint, *args, **kwargs)
        self._sync_flops()
        if not self._prior["global_step"]:
            return result
        steps = result.global_step - self._prior["global_step"]
        total = self._prior["loss_sum"] + (result.training_loss * steps if steps > 0 else 0.0)
        loss = total / max(result.global_step, 1)
        return TrainOutput(result.global_step, loss, {**(result.metrics or {}), "train_loss": loss})

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

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        with dist.watch(f"step {self.state.global_step}"):
            return self._select_batch_samples(epoch_iterator, num_batches, device)

    def training_step(self, *args, **kwargs):
        with dist.watch(f"training step {self.state.global_step}"):
            return super().training_step(*args, **kwargs)

    def _select_batch_samples(self, epoch_iterator, num_batches, device):
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
        self._fallback.check(self._slap.last_record.get("features"), state.global_step)
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
        sums, count = token_loss_sums(logits, labels)
        total = (sums * weights.to(sums.dtype)).sum()
        if num_items_in_batch is None:
            return total / count.clamp(min=1)
        loss = total / num_items_in_batch
        if self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss

    def log(self, logs, *args, **kwargs):
        """Training logs carry the selection's books (so TensorBoard / W&B see them): kept share
        and losses since the last log, and the run's samples, tokens and FLOPs so far."""
        if self._slap is not None and "loss" in logs:
            # Every rank logs at the same steps: the sketch FLOPs are summed over ranks here (and
            # at saves and the end), not with one more collective on every step.
            self._sync_flops()
            logs.update({k: v for k, v in self._slap.pop_interval_stats().items() if v is not None})
            ledger = self._slap.ledger
            for key in LOGGED_LEDGER_KEYS:
                logs[f"slap_{key}"] = getattr(ledger, key)
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
