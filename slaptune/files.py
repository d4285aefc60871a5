"""Whole-or-absent file writes: the one helper every output of slaptune goes through.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "out.json")
>>> write_atomic(path, '{"ok": true}\\n')
>>> open(path).read(), os.listdir(os.path.dirname(path))
('{"ok": true}\\n', ['out.json'])
"""

from __future__ import annotations

import os


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and a rename: the file is either
    whole or absent, even when the disk fills up half-way or the process is killed."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
