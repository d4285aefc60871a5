"""``RunConfig``: every setting of ``slaptune train`` / ``bench`` / ``demo``, one dataclass.

Field names are the YAML keys; ``--field-name`` are the CLI flags (``slaptune.cli.options``).
Values are checked and coerced against the field types, so a YAML file reads the way it looks:
``learning_rate: 1e-3`` is a number (YAML 1.1 would read a string), ``batch_size: "16"`` is 16,
and ``lora: 'no'`` is an error, not ``True``.

>>> RunConfig(learning_rate="1e-3", batch_size="16").learning_rate
0.001
>>> RunConfig(lora="no")
Traceback (most recent call last):
...
ValueError: lora must be true or false, got the string 'no' (write it unquoted: true / false)
>>> RunConfig(warmup_ratio=5)
Traceback (most recent call last):
...
ValueError: warmup_ratio must be in [0, 1], got 5.0
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field, fields

from ..config import SelectionConfig, _opt
from ..data.formats import FORMATS

REPORT_TO = ("none", "tensorboard", "wandb", "mlflow", "trackio", "comet_ml", "clearml")


@dataclass
class RunConfig(SelectionConfig):
    model: str = _opt(
        "llama-1m",
        "a preset (e.g. llama-1m, glm-1m, gpt2-1m), a local HF folder (e.g. one made by "
        "'slaptune convert llama2c'), or a hub id with --online",
    )
    trust_remote_code: bool = _opt(
        False, "run Python code shipped in a model folder (only for folders you trust)"
    )
    chat_template: str = _opt(
        "",
        "override the chat template: a file holding a Jinja template, or a built-in name "
        "(default, chatml, plain); empty: the tokenizer's own, else 'default'",
    )
    data: list[str | dict] = field(
        default_factory=list,
        metadata={
            "help": "training data: PATH or PATH:WEIGHT (JSONL, JSON, Parquet, CSV or a "
            "datasets folder), repeatable for a mixture; WEIGHT scales the file's examples "
            "(2: each twice, 0.5: a seeded random half); in YAML also {path, format, columns, "
            "weight}"
        },
    )
    data_format: str = _opt("alpaca", f"one of {', '.join(FORMATS)}")
    columns: list[str | dict] = field(
        default_factory=list,
        metadata={
            "help": "field mapping FORMAT_FIELD=FILE_FIELD,... (e.g. instruction=question,"
            "output=generated,system=role); once for every --data, or once per --data in order"
        },
    )
    dataset_name: str = _opt(
        "", "a hub dataset id (needs --online), used with or instead of --data"
    )
    dataset_config: str = _opt("", "the hub dataset's configuration (subset) name")
    split: str = _opt("train", "the hub dataset's split")
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
    learning_rate: float = _opt(1e-3, "peak learning rate (AdamW, linear decay), finite and > 0")
    warmup_ratio: float = _opt(0.0, "share of steps with linear warm-up, in [0, 1]")
    weight_decay: float = _opt(0.0, "AdamW weight decay, >= 0")
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
    report_to: list[str] = field(
        default_factory=list,
        metadata={"help": f"loggers for the training statistics: {', '.join(REPORT_TO)}"},
    )
    eval_steps: int = _opt(
        0, "evaluate on the held-out data every N optimizer steps (0: only at the end)"
    )
    early_stopping_patience: int = _opt(
        0, "stop after N evaluations without a better eval loss (0: off; needs --eval-steps)"
    )
    eval_generate: int = _opt(50, "held-out examples to generate for task metrics (0: none)")
    max_new_tokens: int = _opt(64, "generation length for task metrics")
    bf16: bool = _opt(False, "train in bf16 autocast")
    threads: int = _opt(0, "CPU threads (0: torch's default)")
    progress: bool = _opt(True, "show progress bars")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, coerce(f.name, getattr(self, f.name), hints[f.name]))
        super().__post_init__()
        if self.data_format not in FORMATS:
            raise ValueError(
                f"data_format must be one of {', '.join(FORMATS)}, got {self.data_format!r}"
            )
        for name in (
            "max_length",
            "batch_size",
            "grad_accum",
            "tokenizer_vocab",
            "lora_r",
            "lora_alpha",
            "logging_steps",
            "max_new_tokens",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "eval_size",
            "max_train_examples",
            "save_steps",
            "eval_generate",
            "threads",
            "eval_steps",
            "early_stopping_patience",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for f in fields(self):  # inf and nan are never a sensible setting
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        if not self.output_dir.strip():
            raise ValueError("output_dir is empty; give a folder for the run's outputs")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        bad = [r for r in self.report_to if r not in REPORT_TO]
        if bad:
            raise ValueError(f"report_to: unknown logger(s) {bad}; valid: {', '.join(REPORT_TO)}")
        if self.early_stopping_patience and not self.eval_steps:
            raise ValueError(
                "early_stopping_patience needs evaluations during training: set --eval-steps N"
            )


def _number(name: str, value, kind: type):
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value} (a true/false value)")
    if isinstance(value, str):
        try:
            value = float(value.strip())  # YAML 1.1 reads 1e-3 as a string: take it as meant
        except ValueError:
            raise ValueError(f"{name} must be a number, got the string {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value}")
        return int(value)
    return float(value)


def coerce(name: str, value, hint):
    """``value`` as the type ``hint`` of field ``name``, or a ``ValueError`` saying what to write.

    >>> coerce("keep_ratio", "0.5", float), coerce("data", "a.jsonl", list[str])
    (0.5, ['a.jsonl'])
    >>> coerce("data", 5, list[str])
    Traceback (most recent call last):
    ...
    ValueError: data must be a list of file paths, got int 5
    >>> coerce("selection_seed", None, int | None), coerce("selection_seed", "3", int | None)
    (None, 3)
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        hint
    ):
        if value is None:  # an optional setting left at "the default's own choice"
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        item = typing.get_args(hint)[0] if typing.get_args(hint) else str
        allow_dict = typing.get_origin(item) in (typing.Union, types.UnionType)
        if isinstance(value, str) or (allow_dict and isinstance(value, dict)):
            value = [value]  # one entry written without the list brackets
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"{name} must be a list of {'file paths' if name.endswith('data') else 'strings'}, "
                f"got {type(value).__name__} {value!r}"
            )
        for v in value:
            if not (isinstance(v, str) or (allow_dict and isinstance(v, dict))):
                raise ValueError(
                    f"{name}: each item must be a string, got {type(v).__name__} {v!r}"
                )
        return list(value)
    if value is None:
        raise ValueError(f"{name} has no value; give one or leave the key out")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            raise ValueError(
                f"{name} must be true or false, got the string {value!r} "
                "(write it unquoted: true / false)"
            )
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if hint in (int, float):
        return _number(name, value, hint)
    if hint is str and not isinstance(value, str):
        raise ValueError(
            f"{name} must be text, got {type(value).__name__} {value!r} (quote it in YAML)"
        )
    return value


def load_yaml(path: str, with_lines: bool = False):
    """A YAML mapping from ``path`` (and, with ``with_lines``, the line of each top-level key),
    or a one-line error with the file and line."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text) if with_lines else None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, not a YAML config file") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ValueError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping of option: value")
    if not with_lines:
        return data
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return data, lines
