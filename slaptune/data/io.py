"""Read records from JSONL, JSON, Parquet, CSV or a saved ``datasets`` folder, keeping where each
came from (``file:line`` or ``file#index``) so every problem can be reported precisely."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .formats import Example, RecordError, to_example

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


@dataclass
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _jsonl(path: str):
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            where = f"{path}:{n}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield None, where, f"not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8"
                continue
            if not text.strip():
                continue
            try:
                yield json.loads(text), where, None
            except json.JSONDecodeError as e:
                yield None, where, f"malformed JSON ({e.msg} at column {e.colno})"


def _json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as e:
        yield None, path, f"not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8"
        return
    except json.JSONDecodeError as e:
        yield None, f"{path}:{e.lineno}", f"malformed JSON ({e.msg} at column {e.colno})"
        return
    if isinstance(data, dict):
        data = data.get("data", data.get("train"))
    if not isinstance(data, list):
        yield None, path, "a .json file must hold a list of records (or {'data': [...]})"
        return
    for i, r in enumerate(data):
        yield r, f"{path}#{i}", None


def _table(path: str):
    import datasets

    kind = "parquet" if path.endswith(".parquet") else "csv"
    ds = datasets.load_dataset(kind, data_files=path, split="train")
    offset = 2 if kind == "csv" else 0  # CSV: header is line 1
    for i, r in enumerate(ds):
        yield r, (f"{path}:{i + offset}" if kind == "csv" else f"{path}#{i}"), None


def _saved(path: str):
    import datasets

    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"]
    for i, r in enumerate(ds):
        yield r, f"{path}#{i}", None


def read_records(path: str):
    """Yield ``(record | None, where, problem | None)`` for every record of ``path``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        return _saved(path)
    if path.endswith(".jsonl"):
        return _jsonl(path)
    if path.endswith(".json"):
        return _json(path)
    if path.endswith((".parquet", ".csv")):
        return _table(path)
    raise ValueError(
        f"{path}: unknown file type; use one of {', '.join(SUFFIXES)} or a datasets folder"
    )


def load_examples(paths, data_format: str, **format_options):
    """All usable examples of ``paths`` and every problem found, with file and line.

    Duplicate ``id`` fields are problems too (the second and later occurrences).
    """
    examples: list[tuple[Example, str]] = []
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    for path in [paths] if isinstance(paths, str) else paths:
        for record, where, problem in read_records(path):
            if problem:
                problems.append(Problem(where, problem))
                continue
            try:
                ex = to_example(record, data_format, **format_options)
            except RecordError as e:
                problems.append(Problem(where, str(e)))
                continue
            if ex.id is not None:
                if ex.id in seen_ids:
                    problems.append(
                        Problem(where, f"duplicate id {ex.id!r} (first at {seen_ids[ex.id]})")
                    )
                    continue
                seen_ids[ex.id] = where
            examples.append((ex, where))
    return examples, problems
