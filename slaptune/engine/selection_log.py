"""``selection.jsonl``: one JSON line per window, appended whole, and rolled back on resume.

Each record is written with a single ``write`` of the complete line and flushed, so a killed
process leaves at most one torn last line (on a full disk or power loss), never half a record in
the middle. ``truncate_log`` rolls the file back to a checkpoint: a resumed run replays the windows
after the checkpoint, and their records must not appear twice.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "selection.jsonl")
>>> for step in range(3):
...     append_record(path, {"step": step})
>>> with open(path, "a") as f:
...     _ = f.write('{"step": 3, "se')             # a torn last line
>>> truncate_log(path, 2)
(2, 1, 1)
>>> [r["step"] for r in read_records(path)]
[0, 1]
"""

from __future__ import annotations

import json
import os


def append_record(path: str, record: dict) -> None:
    """Append ``record`` as one line (one ``write`` call), flushed to the OS."""
    line = json.dumps(record) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def read_records(path: str) -> list[dict]:
    """Every whole record of ``path`` (a torn or blank line is skipped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = _parse(line)
            if rec is not None:
                out.append(rec)
    return out


def _parse(line: str) -> dict | None:
    if not line.endswith("\n") or not line.strip():
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def truncate_log(path: str, step: int) -> tuple[int, int, int]:
    """Keep only the records of windows before optimizer step ``step`` (the checkpoint's
    ``global_step``: its windows are ``0..step-1``); drop torn lines. The file is replaced
    atomically. Returns ``(kept, dropped_after_checkpoint, torn)``."""
    if not os.path.exists(path):
        return 0, 0, 0
    kept, dropped, torn = [], 0, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            rec = _parse(line)
            if rec is None:
                torn += bool(line.strip())
            elif int(rec.get("step", 0)) >= step:
                dropped += 1
            else:
                kept.append(line)
    if dropped or torn:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
    return len(kept), dropped, torn
