"""The selection log: one JSON line per selection (``selection.jsonl``), appended whole and
rolled back on resume; and the running statistics the trainer's log shows (kept share, mean
window and kept losses). The record is built once; writing it and counting it are separate, so
the log can be off while the statistics still run.

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


def selection_record(
    *, step: int, epoch: int, ids, kept, strata, losses, scored, scoring: str, how: str, info: dict
) -> dict:
    """One record: what was seen and kept; losses over the rows that have a score.

    ``kept`` holds pool positions (None: the pool was trained whole); ``scored`` flags the
    rows whose loss is a real score.

    >>> import torch
    >>> r = selection_record(step=3, epoch=0, ids=torch.tensor([7, 8]), kept=torch.tensor([1]),
    ...     strata=None, losses=torch.tensor([1.0, 2.0]), scored=torch.tensor([True, True]),
    ...     scoring="fresh", how="adam_rank1", info={})
    >>> r["kept_ids"], r["loss_window"], r["loss_kept"]
    ([8], 1.5, 2.0)
    """
    v = scored.nonzero().flatten()
    kept_scored = v if kept is None else kept[scored[kept]]
    return {
        "step": step,
        "epoch": epoch,
        "seen": int(ids.numel()),
        "kept": int(ids.numel() if kept is None else kept.numel()),
        "loss_window": float(losses[v].mean()) if v.numel() else None,
        "loss_kept": float(losses[kept_scored].mean()) if kept_scored.numel() else None,
        "scoring": scoring,
        "features": how,
        "seen_ids": ids.tolist(),
        "seen_losses": [round(float(x), 5) if ok else None for x, ok in zip(losses, scored)],
        "kept_ids": (ids if kept is None else ids[kept]).tolist(),
        "kept_strata": None if strata is None else strata.tolist(),
        **{k: v_ for k, v_ in info.items() if k != "method"},
    }


class SelectionLog:
    """Appends records to ``path`` as whole lines (one ``write`` per line), rank 0 only."""

    def __init__(self, path: str | None, enabled: bool, is_writer: bool):
        self.path = path if (path and enabled and is_writer) else None
        if self.path:  # once here, not on every step
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)

    def write(self, record: dict) -> None:
        if self.path:
            append_record(self.path, record)


class IntervalStats:
    """Kept share and mean window / kept losses since the last ``pop`` (for the trainer log:
    its own ``loss`` is the kept rows' only, biased high under loss-based selection).

    >>> s = IntervalStats()
    >>> s.add({"seen": 4, "kept": 2, "loss_window": 1.0, "loss_kept": 2.0})
    >>> s.pop()
    {'slap_kept_share': 0.5, 'slap_loss_window': 1.0, 'slap_loss_kept': 2.0}
    """

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.seen = self.kept = self.windows = 0
        self.loss_window = self.loss_kept = 0.0

    def add(self, record: dict) -> None:
        self.seen += record["seen"]
        self.kept += record["kept"]
        if record["loss_window"] is not None and record["loss_kept"] is not None:
            self.windows += 1
            self.loss_window += record["loss_window"]
            self.loss_kept += record["loss_kept"]

    def pop(self) -> dict:
        out = {"slap_kept_share": round(self.kept / self.seen, 4) if self.seen else None}
        if self.windows:
            out["slap_loss_window"] = round(self.loss_window / self.windows, 4)
            out["slap_loss_kept"] = round(self.loss_kept / self.windows, 4)
        self._reset()
        return out
