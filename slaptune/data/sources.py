"""Data sources of a run: files (each with its own format, field mapping and weight) and hub
datasets, read into one list of examples.

On the command line a file is ``PATH`` or ``PATH:WEIGHT`` (``--data a.jsonl:2 --data b.jsonl``);
``--columns FORMAT_FIELD=FILE_FIELD,...`` maps a file's fields onto the format's, given once
for every file or once per ``--data`` in the same order. In YAML an entry of ``data`` may also be
a mapping ``{path, format, columns, weight}``.

The weight scales a file's share of the mixture: its examples count ``weight`` times, the whole
part by repetition, the fraction as a seeded random subset (``2``: every example twice; ``0.5``:
a random half).

>>> s = parse_source("rolebench.jsonl:2", "alpaca", "instruction=question,output=generated")
>>> (s.path, s.weight, s.columns)
('rolebench.jsonl', 2.0, {'instruction': 'question', 'output': 'generated'})
>>> weighted(list("abcd"), 1.5, seed=0)
['a', 'b', 'c', 'd', 'b', 'd']
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field

from .formats import FORMATS
from .io import Problem, load_examples


@dataclass
class DataSource:
    path: str
    format: str
    columns: dict = field(default_factory=dict)
    weight: float = 1.0
    hub_config: str | None = None  # not None: ``path`` is a hub dataset id
    hub_split: str = "train"


def parse_columns(spec) -> dict:
    """``"instruction=question,output=generated"`` (or a mapping) -> ``{format: file}`` fields."""
    if not spec:
        return {}
    if isinstance(spec, dict):
        pairs = list(spec.items())
    elif isinstance(spec, str):
        pairs = [p.split("=", 1) if "=" in p else (p, None) for p in spec.split(",") if p.strip()]
    else:
        raise ValueError(f"columns must be 'field=column,...' or a mapping, got {spec!r}")
    out = {}
    for target, source in pairs:
        if not isinstance(source, str) or not source.strip() or not str(target).strip():
            raise ValueError(
                f"--columns {spec!r}: each item is FORMAT_FIELD=FILE_FIELD, "
                "e.g. instruction=question,output=generated"
            )
        out[str(target).strip()] = source.strip()
    return out


def _weight(value, where: str) -> float:
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: weight must be a number, got {value!r}") from None
    if not math.isfinite(w) or w <= 0:
        raise ValueError(f"{where}: weight must be a finite number > 0, got {value!r}")
    return w


def parse_source(entry, data_format: str, columns=None) -> DataSource:
    """One ``--data`` entry (``PATH``, ``PATH:WEIGHT`` or a YAML mapping) as a ``DataSource``."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"path", "format", "columns", "weight"})
        if unknown or not isinstance(entry.get("path"), str):
            raise ValueError(
                f"data entry {entry!r}: expected keys path (required), format, columns, weight"
            )
        fmt = entry.get("format") or data_format
        if fmt not in FORMATS:
            raise ValueError(f"data entry {entry['path']}: format must be one of {FORMATS}")
        return DataSource(
            entry["path"],
            fmt,
            parse_columns(entry.get("columns") or columns),
            _weight(entry.get("weight", 1.0), entry["path"]),
        )
    if not isinstance(entry, str) or not entry:
        raise ValueError(f"data entries must be file paths (or YAML mappings), got {entry!r}")
    path, weight = entry, 1.0
    head, sep, tail = entry.rpartition(":")
    if sep and head and not os.path.exists(entry):
        path, weight = head, _weight(tail, f"--data {entry}")
    return DataSource(path, data_format, parse_columns(columns), weight)


def parse_sources(data: list, data_format: str, columns: list | None = None) -> list[DataSource]:
    """Every ``--data`` entry with its ``--columns`` (one for all, or one per entry)."""
    columns = list(columns or [])
    if len(columns) not in (0, 1, len(data)):
        raise ValueError(
            f"--columns given {len(columns)} times for {len(data)} --data entries; give it "
            "once (for every file) or once per --data, in the same order"
        )
    per = columns * len(data) if len(columns) == 1 else columns or [None] * len(data)
    return [parse_source(d, data_format, c) for d, c in zip(data, per)]


def all_sources(
    data, data_format, columns=None, dataset_name="", dataset_config="", split="train"
) -> list[DataSource]:
    """Files, then the hub dataset if named. ``columns``: one entry for everything, one per
    file, or one per file plus one (the last) for the hub dataset."""
    columns = list(columns or [])
    hub_columns = columns[-1] if len(columns) == 1 else None
    if dataset_name and len(columns) == len(data) + 1:
        hub_columns = columns.pop()
    sources = parse_sources(list(data), data_format, columns)
    if dataset_name:
        sources.append(
            DataSource(dataset_name, data_format, parse_columns(hub_columns), 1.0,
                       dataset_config, split)
        )  # fmt: skip
    return sources


def weighted(items: list, weight: float, seed: int) -> list:
    """``items`` repeated ``int(weight)`` times plus a seeded random ``weight % 1`` share."""
    whole, frac = int(weight), weight - int(weight)
    out = items * whole
    if frac > 0:
        rng = random.Random(seed)
        picked = sorted(rng.sample(range(len(items)), round(frac * len(items))))
        out += [items[i] for i in picked]
    return out


def hub_source(name: str, config: str, split: str):
    """The records of a hub dataset split; a one-line error if hub access is off or fails."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise ValueError(
            f"--dataset-name {name!r}: hub access is off (HF_HUB_OFFLINE=1); pass --online "
            "(or set HF_HUB_OFFLINE=0), or download it and pass the files with --data"
        )
    import datasets

    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # network, missing repo, wrong config or split: all one line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"--dataset-name {name!r} (config {config or 'default'!r}, split {split!r}) could "
            f"not be loaded: {first}"
        ) from None
    return ds


def load_sources(sources: list[DataSource], **format_options):
    """Per source, its examples (weights not applied yet), and every problem with file and line.
    ``mix`` applies the weights, after any held-out split, so that no copy of an evaluation
    example is trained on."""
    groups, problems = [], []
    seen: set[str] = set()
    for src in sources:
        if src.hub_config is None:
            ex, bad = load_examples(src.path, src.format, columns=src.columns, **format_options)
        else:
            ex, bad = _hub_examples(src, **format_options)
        groups.append(_dedupe_ids(ex, seen, bad))
        problems += bad
    return groups, problems


def mix(groups: list[list], sources: list[DataSource], seed: int = 0) -> list:
    """The training mixture: each source's examples scaled by its weight, in source order."""
    out = []
    for i, (items, src) in enumerate(zip(groups, sources)):
        out += weighted(items, src.weight, seed + i) if src.weight != 1 else items
    return out


def _hub_examples(src: DataSource, **format_options):
    from .formats import RecordError, to_example
    from .io import map_columns

    examples, problems = [], []
    for j, record in enumerate(hub_source(src.path, src.hub_config, src.hub_split)):
        where = f"{src.path}[{src.hub_split}]#{j}"
        try:
            ex = to_example(map_columns(record, src.columns), src.format, **format_options)
        except RecordError as e:
            problems.append(Problem(where, str(e), tuple(record)))
            continue
        examples.append((ex, where))
    return examples, problems


def _dedupe_ids(examples, seen: set, problems: list[Problem]):
    """Ids must be unique across files too (the second one is a problem, as within a file)."""
    out = []
    for ex, where in examples:
        if ex.id is not None and ex.id in seen:
            problems.append(Problem(where, f"duplicate id {ex.id!r} (also in an earlier file)"))
            continue
        if ex.id is not None:
            seen.add(ex.id)
        out.append((ex, where))
    return out
