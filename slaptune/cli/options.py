"""One dataclass -> argparse flags and YAML keys, with the same names and types.

Precedence: dataclass defaults < ``--config`` YAML < flags given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from ..pipeline.run_config import load_yaml


def _kind(f: dataclasses.Field, owner) -> type:
    hint = typing.get_type_hints(owner)[f.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_dataclass_flags(parser: argparse.ArgumentParser, cls) -> None:
    """Add ``--field-name`` for every field of ``cls``; defaults stay unset (None) so that a
    YAML value is only overridden by a flag the user really gave."""
    parser.add_argument(
        "--config", help="YAML file whose keys are these flags' names (with underscores)"
    )
    for f in dataclasses.fields(cls):
        kind = _kind(f, cls)
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f"{f.metadata.get('help', '')} (default: {default})"
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_
            )
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, dest=f.name, nargs="+", default=None, help=help_)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=None, help=help_)


def resolve(cls, args: argparse.Namespace, overrides: dict | None = None):
    """The ``cls`` instance from defaults, ``args.config`` and the flags actually given."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict = dict(overrides or {})
    if getattr(args, "config", None):
        data = load_yaml(args.config)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"{args.config}: unknown key(s) {unknown}; valid keys are the flags' "
                "names, e.g. keep_ratio, data_format"
            )
        for k, v in data.items():
            if isinstance(v, str) and typing.get_origin(typing.get_type_hints(cls)[k]) is list:
                v = [v]
            values[k] = v
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    return cls(**values)
