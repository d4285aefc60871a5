"""Data and model for a run: every check happens here, before anything is written."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.formats import Example
from ..data.io import Problem, summarise
from ..data.sources import DataSource, all_sources, load_sources, mix, parse_sources
from ..data.tokenize import set_chat_template, tokenize_examples
from ..models.load import hub_allowed, is_hub_id, is_model_path, load_pretrained
from ..models.presets import PRESETS, build_model, build_tokenizer
from .run_config import RunConfig


class DataError(ValueError):
    """Bad input records; the message lists every distinct problem with file and line."""

    def __init__(self, problems: list[Problem], what: str = "training data"):
        self.problems = problems
        lines = summarise(problems)
        shown = "\n".join(f"  {line}" for line in lines[:20])
        more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
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


def run_sources(cfg: RunConfig) -> list[DataSource]:
    """``--data`` entries (with ``--columns`` and weights) and ``--dataset-name``, in order."""
    return all_sources(
        cfg.data, cfg.data_format, cfg.columns, cfg.dataset_name, cfg.dataset_config, cfg.split
    )


def read_and_check(sources, cfg: RunConfig, what: str):
    """Per source, its usable examples (unweighted), and the problems (refused unless
    ``skip_bad_records``)."""
    fmt_opts = {"source_lang": cfg.source_lang or None, "target_lang": cfg.target_lang or None}
    if sources and not isinstance(sources[0], DataSource):  # plain paths (eval data)
        sources = parse_sources(list(sources), cfg.data_format)
    groups, problems = load_sources(sources, **fmt_opts)
    if problems and not cfg.skip_bad_records:
        raise DataError(problems, what)
    if not any(groups):
        names = ", ".join(s.path for s in sources)
        raise ValueError(f"no usable example in the {what} ({names})")
    return groups, problems


def split_eval(examples, cfg: RunConfig):
    """A fixed-seed split: the eval set is ``eval_size`` examples drawn with ``seed``."""
    order = list(range(len(examples)))
    random.Random(cfg.seed).shuffle(order)
    n_eval = min(cfg.eval_size, len(examples) // 5)
    held = set(order[:n_eval])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [examples[i] for i in sorted(held)]


def check_model_name(model: str) -> None:
    """A folder, a preset, or (hub access on) a hub id; else one line saying which it is not."""
    if is_model_path(model) or model in PRESETS or (is_hub_id(model) and hub_allowed()):
        return
    hub = (
        "; hub access is off (HF_HUB_OFFLINE=1): pass --online for a hub id"
        if is_hub_id(model)
        else ""
    )
    raise ValueError(
        f"--model {model!r} is neither a folder nor a preset, nor reachable{hub}; "
        f"presets: {', '.join(PRESETS)}"
    )


def load_tokenizer_and_model(cfg: RunConfig, train_texts):
    """A preset (tokenizer trained on the training texts), a local Hugging Face folder, or a
    hub id when hub access is on."""
    check_model_name(cfg.model)
    if cfg.model in PRESETS and not is_model_path(cfg.model):
        tok = build_tokenizer(train_texts, cfg.tokenizer_vocab)
        model = build_model(cfg.model, len(tok), seed=cfg.seed, max_positions=cfg.max_length)
    else:
        tok, model = load_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
    set_chat_template(tok, cfg.chat_template)
    tok.padding_side = "right"
    return tok, model


def example_text(ex: Example) -> str:
    return "\n".join(m["content"] for m in ex.messages)


def prepare(cfg: RunConfig):
    """``(tokenizer, model, PreparedData)``; raises ``DataError`` before any output exists."""
    if not cfg.data and not cfg.dataset_name:
        raise ValueError("no training data: pass --data FILE [FILE ...] (or --dataset-name)")
    check_model_name(cfg.model)
    if cfg.chat_template:  # a bad template file is refused before the data is read
        from ..data.tokenize import load_chat_template

        load_chat_template(cfg.chat_template)
    sources = run_sources(cfg)
    groups, skipped = read_and_check(sources, cfg, "training data")
    if cfg.eval_data:
        eval_groups, bad = read_and_check(cfg.eval_data, cfg, "evaluation data")
        eval_examples = [x for g in eval_groups for x in g]
        skipped += bad
    else:  # split before the weights apply: no copy of a held-out example is trained on
        _, eval_examples = split_eval([x for g in groups for x in g], cfg)
        held = {where for _, where in eval_examples}
        groups = [[x for x in g if x[1] not in held] for g in groups]
    train_examples = mix(groups, sources, cfg.seed)
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
