"""One dataclass -> argparse flags and YAML keys, with the same names and types.

Precedence: dataclass defaults < ``--config`` YAML < flags given on the command line. Flags are
grouped in ``--help`` (model, data, training, LoRA, selection, output); YAML values are coerced
against the field types with the file and line in every error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing

from ..pipeline.run_config import coerce, load_yaml

GROUPS = {
    "model": ("model", "trust_remote_code", "chat_template", "tokenizer_vocab"),
    "data": (
        "data", "data_format", "columns", "dataset_name", "dataset_config", "split",
        "eval_data", "eval_size", "source_lang", "target_lang", "max_length",
        "max_train_examples", "skip_bad_records",
    ),
    "training": (
        "epochs", "batch_size", "grad_accum", "learning_rate", "warmup_ratio", "weight_decay",
        "seed", "bf16", "threads", "resume", "save_steps", "eval_steps",
        "early_stopping_patience", "eval_generate", "max_new_tokens",
    ),
    "LoRA": ("lora", "lora_r", "lora_alpha", "lora_targets"),
    "selection": (),  # every other field: the SelectionConfig ones
    "output": ("output_dir", "logging_steps", "report_to", "progress"),
}  # fmt: skip
METAVARS = {"data": "PATH[:WEIGHT]", "eval_data": "PATH", "columns": "FIELD=COLUMN,...",
            "report_to": "LOGGER"}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``slaptune: error:`` line (exit 2), like the rest."""

    def error(self, message):
        sys.stderr.write(f"slaptune: error: {message}; see '{self.prog} --help'\n")
        sys.exit(2)


def _kind(f: dataclasses.Field, owner) -> type:
    hint = typing.get_type_hints(owner)[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_online_flag(parser) -> None:
    parser.add_argument(
        "--online",
        action="store_true",
        help="allow hub ids for models and datasets (sets HF_HUB_OFFLINE=0; default: offline "
        "unless HF_HUB_OFFLINE=0 is set)",
    )


def add_dataclass_flags(parser: argparse.ArgumentParser, cls) -> None:
    """Add ``--field-name`` for every field of ``cls`` in its ``GROUPS`` section; defaults stay
    unset (None) so that a YAML value is only overridden by a flag the user really gave."""
    parser.add_argument(
        "--config",
        help="YAML file whose keys are these flags' names with underscores (default: none)",
    )
    groups = {name: parser.add_argument_group(f"{name} options") for name in GROUPS}
    where = {f: g for g, names in GROUPS.items() for f in names}
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    rest = [n for n in by_name if n not in where]  # the selection fields
    # --help and usage list the flags group by group, model first.
    all_fields = [by_name[n] for g in GROUPS for n in (GROUPS[g] or rest) if n in by_name]
    for f in all_fields:
        kind = _kind(f, cls)
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = "none" if default in ([], "") else default
        help_ = f"{f.metadata.get('help', '')} (default: {shown})".replace("%", "%%")
        group = groups[where.get(f.name, "selection")]
        if kind is bool:
            group.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_
            )
        elif typing.get_origin(kind) is list:
            group.add_argument(
                flag, dest=f.name, nargs="+", action="extend", metavar=METAVARS.get(f.name),
                help=help_,
            )  # fmt: skip
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None, help=help_)
        if f.name == "model":
            add_online_flag(group)


def resolve(cls, args: argparse.Namespace, overrides: dict | None = None):
    """The ``cls`` instance from defaults, ``args.config`` and the flags actually given."""
    hints = typing.get_type_hints(cls)
    values: dict = dict(overrides or {})
    if getattr(args, "config", None):
        data, lines = load_yaml(args.config, with_lines=True)
        unknown = sorted(set(data) - set(hints))
        if unknown:
            first = min(lines.get(k, 0) for k in unknown)
            raise ValueError(
                f"{args.config}:{first}: unknown key(s) {unknown}; valid keys are the flags' "
                "names, e.g. keep_ratio, data_format"
            )
        for k, v in data.items():
            try:
                values[k] = coerce(k, v, hints[k])
            except ValueError as e:
                raise ValueError(f"{args.config}:{lines.get(k, '?')}: {e}") from None
    from_yaml = dict(lines) if getattr(args, "config", None) else {}
    for name in hints:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
            from_yaml.pop(name, None)
    try:
        return cls(**values)
    except ValueError as e:  # a range check: name the YAML line the value came from
        key = next((k for k in from_yaml if str(e).startswith((f"{k} ", f"{k}:"))), None)
        if key is None:
            raise
        raise ValueError(f"{args.config}:{from_yaml[key]}: {e}") from None
