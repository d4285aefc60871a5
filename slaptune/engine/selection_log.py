"""The selection log: one JSON line per selection (``selection.jsonl``), and the running
statistics the trainer's log shows (kept share, mean window and kept losses).

The record is built once; writing it and counting it are separate, so the log can be off
while the statistics still run.
"""

from __future__ import annotations

import json
import os


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
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


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
