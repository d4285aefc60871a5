"""``RunConfig``: every setting of ``slaptune train`` / ``bench`` / ``demo``, one dataclass.

Field names are the YAML keys; ``--field-name`` are the CLI flags (``slaptune.cli.options``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import SelectionConfig, _opt
from ..data.formats import FORMATS


@dataclass
class RunConfig(SelectionConfig):
    model: str = _opt(
        "llama-1m",
        "a preset (e.g. llama-1m, glm-1m, gpt2-1m), or a local HF folder "
        "(e.g. one made by 'slaptune convert llama2c')",
    )
    data: list[str] = field(
        default_factory=list,
        metadata={"help": "training data: JSONL, JSON, Parquet, CSV files or a datasets folder"},
    )
    data_format: str = _opt("alpaca", f"one of {', '.join(FORMATS)}")
    eval_data: list[str] = field(
        default_factory=list,
        metadata={"help": "held-out data (default: a split of --data of size --eval-size)"},
    )
    eval_size: int = _opt(100, "examples split off --data for evaluation when no --eval-data")
    source_lang: str = _opt("", "translation: source language code (nested records)")
    target_lang: str = _opt("", "translation: target language code (nested records)")
    max_length: int = _opt(256, "tokens per example (longer ones are cut from the right)")
    max_train_examples: int = _opt(0, "use only the first N training examples (0: all)")
    skip_bad_records: bool = _opt(
        False, "skip (and count) records that fail the checks instead of refusing to start"
    )
    tokenizer_vocab: int = _opt(1024, "presets: BPE vocabulary trained on the training data")
    epochs: float = _opt(3.0, "training epochs")
    batch_size: int = _opt(16, "examples per micro-batch and device (before selection)")
    grad_accum: int = _opt(1, "micro-batches per optimizer step (the candidate window)")
    learning_rate: float = _opt(1e-3, "peak learning rate (AdamW, linear decay)")
    warmup_ratio: float = _opt(0.0, "share of steps with linear warm-up")
    weight_decay: float = _opt(0.0, "AdamW weight decay")
    lora: bool = _opt(False, "train LoRA adapters (PEFT) instead of all weights")
    lora_r: int = _opt(8, "LoRA rank")
    lora_alpha: int = _opt(16, "LoRA alpha")
    lora_targets: str = _opt("all-linear", "LoRA target modules (PEFT syntax)")
    seed: int = _opt(0, "seed of data order, model init and splits")
    output_dir: str = _opt("runs/slaptune", "where the model, metrics, logs and plots go")
    resume: bool = _opt(False, "continue an interrupted run from its last checkpoint")
    resume_override: bool = _opt(
        False, "with --resume: accept settings that differ from the checkpoint's (else refused)"
    )
    save_steps: int = _opt(0, "checkpoint every N optimizer steps (0: at every epoch end)")
    logging_steps: int = _opt(10, "log every N optimizer steps")
    eval_generate: int = _opt(50, "held-out examples to generate for task metrics (0: none)")
    max_new_tokens: int = _opt(64, "generation length for task metrics")
    bf16: bool = _opt(False, "train in bf16 autocast")
    threads: int = _opt(0, "CPU threads (0: torch's default)")
    progress: bool = _opt(True, "show progress bars")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data_format not in FORMATS:
            raise ValueError(
                f"data_format must be one of {', '.join(FORMATS)}, got {self.data_format!r}"
            )
        for name in ("max_length", "batch_size", "grad_accum", "tokenizer_vocab"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def load_yaml(path: str) -> dict:
    """A YAML mapping from ``path``, or a one-line error with the file and line."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ValueError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping of option: value")
    return data
