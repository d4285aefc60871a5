"""The CLI's one error path: an expected failure becomes one line naming the file and what to
do; output folders are checked before any work and never left half-written.

>>> import errno
>>> describe(OSError(errno.ENOSPC, "No space left on device", "runs/x/model.safetensors"))
'runs/x/model.safetensors: no space left on the device; free space or choose another \
--output-dir'
>>> describe(RuntimeError("a bug")) is None
True
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from ..files import write_atomic  # noqa: F401  (re-exported for the commands)

HINTS = {
    errno.ENOSPC: "no space left on the device; free space or choose another --output-dir",
    errno.EDQUOT: "disk quota exceeded; free space or choose another --output-dir",
    errno.EROFS: "read-only file system; choose another path",
    errno.EACCES: "permission denied; check the file's permissions or choose another path",
    errno.EPERM: "operation not permitted; check the permissions or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "a folder where a file was expected; give a file",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
}
EXPECTED = (ValueError, OSError)


def describe(e: BaseException) -> str | None:
    """The one-line message for an expected failure, or ``None`` for a bug (a traceback)."""
    full = ("os error 28", "code: 28", "StorageFull", "No space left")
    if type(e).__name__ == "SafetensorError" and any(m in str(e) for m in full):
        return f"writing the model: {HINTS[errno.ENOSPC]}"
    if isinstance(e, RuntimeError) and (
        "PytorchStreamWriter" in str(e) or "inline_container" in str(e)
    ):
        first = str(e).splitlines()[0]  # torch.save's zip writer on a short write
        return f"writing a checkpoint failed ({first}); {HINTS[errno.ENOSPC]}"
    if isinstance(e, OSError) and e.errno in HINTS and e.filename:
        return f"{e.filename}: {HINTS[e.errno]}"
    if isinstance(e, EXPECTED):
        text = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename and e.strerror:
            text = f"{e.filename}: {e.strerror}"
        return text
    return None


def check_writable(path: str, what: str = "--output-dir") -> None:
    """Refuse (one line) an output path that cannot be created or written, before any work.

    The nearest existing folder above ``path`` must be a folder and accept a new file; the probe
    file is removed at once, so nothing is left behind. ``what`` other than ``--output-dir``
    means ``path`` is a file.
    """
    probe = os.path.abspath(path)
    if what != "--output-dir":
        if os.path.isdir(probe):
            raise IsADirectoryError(f"{what} {path}: a folder; give a file name")
        probe = os.path.dirname(probe)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise NotADirectoryError(f"{path}: {probe} is a file, not a folder; choose another path")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".slaptune-probe-")
        os.close(fd)
        os.remove(name)
    except OSError as e:
        hint = HINTS.get(e.errno, e.strerror)
        raise ValueError(f"{path}: cannot write in {probe}: {hint}") from None


def remove_partial(path: str, existed: bool) -> str:
    """After a failed run: remove the output folder this command created unless it holds a
    complete checkpoint (one with ``trainer_state.json``, written last) to resume from; then
    only the incomplete checkpoints go. The note says what happened (appended to the error)."""
    if existed or not os.path.isdir(path) or os.environ.get("RANK", "0") != "0":
        return ""  # under torchrun only rank 0 owns the folder
    ckpts = [n for n in os.listdir(path) if n.startswith("checkpoint-")]
    complete = [n for n in ckpts if os.path.exists(os.path.join(path, n, "trainer_state.json"))]
    if not complete:
        shutil.rmtree(path, ignore_errors=True)
        return f" (removed the unfinished output folder {path})"
    for n in set(ckpts) - set(complete):
        shutil.rmtree(os.path.join(path, n), ignore_errors=True)
    for n in os.listdir(path):  # torn temporary files of the final outputs
        if n.endswith(".tmp"):
            os.remove(os.path.join(path, n))
    return f" (complete checkpoints in {path} are kept for --resume)"
