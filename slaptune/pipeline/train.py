"""``run_training``: data and model checks, SlapTrainer, evaluation, and the run's outputs.

Outputs in ``output_dir``: the model and tokenizer (safetensors), ``run_config.yaml``,
``metrics.json``, ``selection.jsonl`` and ``plots/``. Every check runs before the folder is
created, and the final files are written atomically (temporary name, then rename).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import torch
import yaml

from ..engine import distributed as dist
from ..engine.selection_log import read_records
from ..files import write_atomic
from ..score.loss import IGNORE_INDEX
from .evaluate import evaluate
from .prepare import prepare
from .report import plot_kept_histogram, plot_losses
from .run_config import RunConfig

# What `slaptune train` prints at the end: the compute side by side with the quality.
SUMMARY_KEYS = (
    "samples_seen",
    "samples_trained",
    "tokens_seen",
    "tokens_trained",
    "flops_scoring",
    "flops_training",
    "wall_clock_s",
    "train_loss",
    "eval_loss",
    "eval_perplexity",
)


# RunConfig fields that change what a resumed run trains (beyond the Trainer's own settings).
RESUME_SETTINGS = (
    "model",
    "data",
    "data_format",
    "max_length",
    "max_train_examples",
    "tokenizer_vocab",
    "lora",
    "lora_r",
    "lora_alpha",
    "lora_targets",
)


def finished_metrics(cfg: RunConfig) -> dict | None:
    """``--resume`` of a run that already wrote metrics.json: its metrics (nothing to do)."""
    path = os.path.join(cfg.output_dir, "metrics.json")
    if not (cfg.resume and os.path.isfile(path)):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError:  # torn (written atomically, so not by slaptune): finish the run again
        return None


def check_output_dir(cfg: RunConfig) -> None:
    out = cfg.output_dir
    if not os.path.exists(out):
        if cfg.resume:
            raise FileNotFoundError(f"--resume: {out} does not exist; nothing to resume")
        return
    has_ckpt = any(n.startswith("checkpoint-") for n in os.listdir(out))
    if cfg.resume and not has_ckpt:
        raise FileNotFoundError(f"--resume: {out} has no checkpoint-* folder to resume from")
    if not cfg.resume and os.listdir(out):
        raise FileExistsError(
            f"{out} exists and is not empty; pass --resume to continue it or "
            "choose another --output-dir"
        )


def build_trainer(cfg: RunConfig, tok, model, data):
    import datasets
    from transformers import DataCollatorForSeq2Seq

    from ..config import SelectionConfig
    from ..integrations.hf import SlapTrainer, SlapTrainingArguments

    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                target_modules=cfg.lora_targets,
                task_type="CAUSAL_LM",
            ),
        )
    selection = {k: getattr(cfg, k) for k in SelectionConfig.__dataclass_fields__}
    args = SlapTrainingArguments(
        **evaluation_arguments(cfg),
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        logging_steps=cfg.logging_steps,
        save_total_limit=2,
        seed=cfg.seed,
        report_to=getattr(cfg, "report_to", None) or [],
        ddp_timeout=dist.timeout_s(),
        use_cpu=not torch.cuda.is_available(),
        bf16=cfg.bf16,
        disable_tqdm=not cfg.progress,
        dataloader_num_workers=0,
        per_device_eval_batch_size=cfg.batch_size,
        **selection,
    )
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE_INDEX)
    trainer = SlapTrainer(
        model=model,
        args=args,
        processing_class=tok,
        data_collator=collator,
        train_dataset=datasets.Dataset.from_list(data.train_rows),
        eval_dataset=datasets.Dataset.from_list(data.eval_rows) if cfg.eval_steps else None,
    )
    if cfg.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(cfg.early_stopping_patience))
    trainer.allow_settings_change = getattr(cfg, "resume_override", False)
    trainer.slap_extra_settings = {k: getattr(cfg, k) for k in RESUME_SETTINGS}
    return trainer


def evaluation_arguments(cfg: RunConfig) -> dict:
    """Checkpoint and evaluation settings of the Trainer: with ``eval_steps`` the held-out loss
    is measured every ``eval_steps`` optimizer steps, checkpoints are saved at those steps (or
    every ``save_steps``, which must then be a multiple), and the best checkpoint by held-out
    loss is the one loaded at the end (and the one early stopping keeps).

    >>> from slaptune.pipeline.run_config import RunConfig
    >>> evaluation_arguments(RunConfig(data=["x"], data_format="qa", eval_steps=5))["save_steps"]
    5
    """
    if not cfg.eval_steps:
        return {
            "save_strategy": "steps" if cfg.save_steps else "epoch",
            "save_steps": cfg.save_steps or 500,
        }
    if cfg.save_steps and cfg.save_steps % cfg.eval_steps:
        raise ValueError(
            f"--save-steps {cfg.save_steps} must be a multiple of --eval-steps {cfg.eval_steps} "
            "(the best checkpoint is chosen among the evaluated ones)"
        )
    return {
        "eval_strategy": "steps",
        "eval_steps": cfg.eval_steps,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps or cfg.eval_steps,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
    }


def run_training(cfg: RunConfig, setup=None) -> dict:
    """Train with selection, evaluate, write every output; returns the metrics.

    ``setup(trainer, tokenizer, data)``, if given, runs once before training (the bench's hook:
    it adds its eval-curve callback there)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Under torchrun every rank runs this; rank 0 alone checks and writes the outputs (the
    # process group does not exist yet, so RANK is read from the launcher's environment).
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        check_output_dir(cfg)
    done = finished_metrics(cfg)
    if done is not None:
        if main_rank:
            print(
                f"slaptune: {cfg.output_dir} is a finished run (metrics.json is there); "
                "nothing to resume. To train longer, use a new --output-dir",
                file=sys.stderr,
            )
        return done
    tok, model, data = prepare(cfg)  # raises before anything is written
    os.makedirs(cfg.output_dir, exist_ok=True)
    trainer = build_trainer(cfg, tok, model, data)
    if setup is not None:  # bench hook (eval curves), see pipeline/bench.py
        setup(trainer, tok, data)
    result = trainer.train(resume_from_checkpoint=True if cfg.resume else None)
    wall = trainer.slap_wall_clock_s  # the whole run's, across resumes
    if not math.isfinite(result.training_loss):  # Trainer's log filter would hide it
        raise ValueError(
            f"training diverged (train loss {result.training_loss}); lower "
            f"--learning-rate; checkpoints in {cfg.output_dir} are kept, no model "
            "or metrics were written"
        )
    model = trainer.model
    metrics = {
        **trainer.slap_engine.ledger.summary(),
        "wall_clock_s": round(wall, 3),
        "train_loss": round(result.training_loss, 5),
        "records_skipped": len(data.skipped),
        "method": cfg.method,
        "keep_ratio": cfg.keep_ratio,
        "scoring": cfg.scoring,
    }
    metrics["time_training_s"] = round(
        wall - metrics["time_scoring_s"] - metrics["time_selection_s"], 3
    )
    if not main_rank:  # the ledger is global (gathered), so rank 0's books are complete
        return metrics
    metrics.update(
        evaluate(
            model,
            tok,
            data.eval_rows,
            data.eval_examples,
            cfg.eval_generate,
            cfg.max_new_tokens,
            progress=cfg.progress,
            # the bench's eval curve has just evaluated these rows at these weights
            heldout=setup.final_heldout(trainer) if hasattr(setup, "final_heldout") else None,
        )
    )
    trainer.save_model(cfg.output_dir)
    tok.save_pretrained(cfg.output_dir)
    write_atomic(
        os.path.join(cfg.output_dir, "run_config.yaml"),
        yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False),
    )
    records = read_records(os.path.join(cfg.output_dir, "selection.jsonl"))
    plots = os.path.join(cfg.output_dir, "plots")
    try:
        os.makedirs(plots, exist_ok=True)
        metrics["plots"] = [
            p
            for p in (
                plot_losses(
                    trainer.state.log_history, records, os.path.join(plots, "loss.png"), metrics
                ),
                plot_kept_histogram(records, os.path.join(plots, "kept_losses.png"), metrics),
            )
            if p
        ]
    except ImportError:
        metrics["plots"] = "matplotlib not installed: pip install 'slaptune[bench]'"
    metrics["log_history"] = trainer.state.log_history
    write_atomic(os.path.join(cfg.output_dir, "metrics.json"), json.dumps(metrics, indent=1))
    return metrics
