"""Read records from JSONL, JSON, Parquet, CSV or a saved ``datasets`` folder, keeping where each
came from (``file:line`` or ``file#index``) so every problem can be reported precisely.

A file that cannot be parsed at all (broken CSV quoting, a corrupt Parquet file, JSON nested
deeper than Python can read) is one problem with its file and line, never a traceback; a file
with no record at all (empty, or blank lines only) is a problem too, for ``check-data`` and
``train`` alike.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass

from .formats import Example, RecordError, to_example

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
NESTED = "JSON nested too deeply for Python's parser; flatten the record"


@dataclass
class Problem:
    where: str
    message: str
    fields: tuple = ()  # the record's fields, when it had any: helps spot a wrong --columns

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
            except RecursionError:
                yield None, where, NESTED


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
    except RecursionError:
        yield None, path, NESTED
        return
    if isinstance(data, dict):
        data = data.get("data", data.get("train"))
    if not isinstance(data, list):
        yield None, path, "a .json file must hold a list of records (or {'data': [...]})"
        return
    for i, r in enumerate(data):
        yield r, f"{path}#{i}", None


def _csv(path: str):
    """CSV with a header line; every value stays a string (``"007"`` is not the number 7)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            start = reader.line_num + 1
            for row in reader:
                where = f"{path}:{start}"
                if len(row) != len(header):
                    yield (
                        None,
                        where,
                        (
                            f"{len(row)} field(s) where the header has {len(header)}; "
                            "quote values that contain commas"
                        ),
                    )
                elif any(v.strip() for v in row):
                    yield dict(zip(header, row)), where, None
                start = reader.line_num + 1
        except UnicodeDecodeError as e:
            yield None, path, f"not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8"
        except csv.Error as e:
            yield None, f"{path}:{reader.line_num}", f"broken CSV ({e}); check the quoting"


def _parquet(path: str):
    try:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    except ImportError:
        raise
    except Exception as e:  # pyarrow raises many types for a corrupt file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        yield None, path, f"not a readable Parquet file ({first})"
        return
    for i, r in enumerate(rows):
        yield r, f"{path}#{i}", None


def _saved(path: str):
    import datasets

    try:
        ds = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(
            f"{path}: a folder, but not a saved datasets folder ({str(e).splitlines()[0]}); "
            "pass the data files inside it instead"
        ) from None
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
    if path.endswith(".csv"):
        return _csv(path)
    if path.endswith(".parquet"):
        return _parquet(path)
    raise ValueError(
        f"{path}: unknown file type; use one of {', '.join(SUFFIXES)} or a datasets folder"
    )


def map_columns(record, columns: dict | None):
    """``record`` with the format's fields taken from the file's own (``{format: file}``).

    >>> map_columns({"question": "q", "generated": ["a"]}, {"instruction": "question",
    ...     "output": "generated"})["instruction"]
    'q'
    """
    if not columns or not isinstance(record, dict):
        return record
    out = dict(record)
    for target, source in columns.items():
        if record.get(source) is None:
            raise RecordError(f"missing field {source!r} (mapped onto {target!r} by --columns)")
        out[target] = record[source]
    return out


def load_examples(paths, data_format: str, *, columns: dict | None = None, **format_options):
    """All usable examples of ``paths`` and every problem found, with file and line.

    Duplicate ``id`` fields are problems too (the second and later occurrences), and so is a
    file without a single record.
    """
    examples: list[tuple[Example, str]] = []
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    for path in [paths] if isinstance(paths, str) else paths:
        n_records = 0
        for record, where, problem in read_records(path):
            n_records += 1
            if problem:
                problems.append(Problem(where, problem))
                continue
            try:
                ex = to_example(map_columns(record, columns), data_format, **format_options)
            except RecordError as e:
                keys = tuple(record) if isinstance(record, dict) else ()
                problems.append(Problem(where, str(e), keys))
                continue
            if ex.id is not None:
                if ex.id in seen_ids:
                    problems.append(
                        Problem(where, f"duplicate id {ex.id!r} (first at {seen_ids[ex.id]})")
                    )
                    continue
                seen_ids[ex.id] = where
            examples.append((ex, where))
        if not n_records:
            what = "a header line" if path.endswith(".csv") else "blank lines"
            problems.append(Problem(path, f"no record: the file is empty or holds only {what}"))
    return examples, problems


def summarise(problems: list[Problem], show: int = 3) -> list[str]:
    """One line per problem, except that a message repeated more than ``show`` times becomes
    one line with its count, its first place and the fields the records had.

    >>> ps = [Problem(f"a.jsonl:{i}", "missing field 'output'", ("q", "a")) for i in range(9)]
    >>> summarise(ps + [Problem("a.jsonl:9", "malformed JSON")])
    ["a.jsonl: 9 records: missing field 'output' (first at a.jsonl:0; fields present: q, a)", \
'a.jsonl:9: malformed JSON']
    """
    counts = Counter(p.message for p in problems)
    lines, done = [], set()
    for p in problems:
        if counts[p.message] <= show:
            lines.append(str(p))
        elif p.message not in done:
            done.add(p.message)
            same = [q for q in problems if q.message == p.message]
            files = sorted({q.where.split(":")[0].split("#")[0] for q in same})
            fields = list(dict.fromkeys(f for q in same for f in q.fields))
            extra = f"; fields present: {', '.join(fields)}" if fields else ""
            lines.append(
                f"{', '.join(files)}: {counts[p.message]} records: {p.message} "
                f"(first at {p.where}{extra})"
            )
    return lines
