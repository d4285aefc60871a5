"""Data and model for a run: every check happens here, before anything is written."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.formats import Example
from ..data.io import Problem, load_examples
from ..data.tokenize import ensure_chat_template, tokenize_examples
from ..models.load import is_model_path, load_pretrained
from ..models.presets import PRESETS, build_model, build_tokenizer
from .run_config import RunConfig


class DataError(ValueError):
    """Bad input records; the message lists every problem with file and line."""

    def __init__(self, problems: list[Problem], what: str = "training data"):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"{len(problems)} bad record(s) in the {what}; fix them, or pass "
            f"--skip-bad-records to skip and count them:\n{shown}{more}"
        )


@dataclass
class PreparedData:
    train_rows: list[dict]
    eval_rows: list[dict]
    eval_examples: list[Example]
    skipped: list[Problem]


def read_and_check(paths, cfg: RunConfig, what: str):
    fmt_opts = {"source_lang": cfg.source_lang or None, "target_lang": cfg.target_lang or None}
    examples, problems = load_examples(paths, cfg.data_format, **fmt_opts)
    if problems and not cfg.skip_bad_records:
        raise DataError(problems, what)
    if not examples:
        raise ValueError(f"no usable example in {what} {paths}")
    return examples, problems


def split_eval(examples, cfg: RunConfig):
    """A fixed-seed split: the eval set is ``eval_size`` examples drawn with ``seed``."""
    order = list(range(len(examples)))
    random.Random(cfg.seed).shuffle(order)
    n_eval = min(cfg.eval_size, len(examples) // 5)
    held = set(order[:n_eval])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [examples[i] for i in sorted(held)]


def load_tokenizer_and_model(cfg: RunConfig, train_texts):
    """A preset (tokenizer trained on the training texts) or a local Hugging Face folder."""
    if is_model_path(cfg.model):  # a folder or a .gguf file
        tok, model = load_pretrained(cfg.model)
    elif cfg.model in PRESETS:
        tok = build_tokenizer(train_texts, cfg.tokenizer_vocab)
        model = build_model(cfg.model, len(tok), seed=cfg.seed, max_positions=cfg.max_length)
    else:
        raise ValueError(
            f"--model {cfg.model!r} is neither a folder nor a preset; presets: {', '.join(PRESETS)}"
        )
    ensure_chat_template(tok)
    tok.padding_side = "right"
    return tok, model


def example_text(ex: Example) -> str:
    return "\n".join(m["content"] for m in ex.messages)


def prepare(cfg: RunConfig):
    """``(tokenizer, model, PreparedData)``; raises ``DataError`` before any output exists."""
    if not cfg.data:
        raise ValueError("no training data: pass --data FILE [FILE ...]")
    if not is_model_path(cfg.model) and cfg.model not in PRESETS:
        raise ValueError(
            f"--model {cfg.model!r} is neither a folder nor a preset; presets: {', '.join(PRESETS)}"
        )
    examples, skipped = read_and_check(cfg.data, cfg, "training data")
    if cfg.eval_data:
        eval_examples, bad = read_and_check(cfg.eval_data, cfg, "evaluation data")
        skipped += bad
        train_examples = examples
    else:
        train_examples, eval_examples = split_eval(examples, cfg)
    if cfg.max_train_examples:
        train_examples = train_examples[: cfg.max_train_examples]
    tok, model = load_tokenizer_and_model(cfg, [example_text(e) for e, _ in train_examples])
    train_rows, bad, _ = tokenize_examples(tok, train_examples, cfg.max_length)
    eval_rows, bad_eval, kept_eval = tokenize_examples(tok, eval_examples, cfg.max_length)
    if (bad or bad_eval) and not cfg.skip_bad_records:
        raise DataError(bad + bad_eval, "data after tokenisation")
    skipped += bad + bad_eval
    if len(train_rows) < cfg.batch_size * cfg.grad_accum:
        raise ValueError(
            f"only {len(train_rows)} usable training examples, fewer than one "
            f"window of {cfg.batch_size} x {cfg.grad_accum}"
        )
    return tok, model, PreparedData(train_rows, eval_rows, [e for e, _ in kept_eval], skipped)
