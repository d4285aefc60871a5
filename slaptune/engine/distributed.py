"""Every ``torch.distributed`` call in slaptune lives here, with single-process fallbacks.

Selection is global: each rank gathers every rank's rows, losses and features, all ranks run
the same selection from the same seeded generator, and the kept rows are dealt back evenly.

A hung or dead rank makes the others wait in a collective until the process-group timeout:
``timeout_s()`` (``SLAPTUNE_DIST_TIMEOUT_S``, default 600 s, not torch's 30 min) is what the HF
integration and the CLI pass to the process group, and a collective that fails says which ranks
did not answer (asked through the launcher's key-value store).

>>> timeout_s({"SLAPTUNE_DIST_TIMEOUT_S": "90"})
90
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

TIMEOUT_ENV = "SLAPTUNE_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600


def timeout_s(environ=None) -> int:
    """Seconds a collective may wait for the other ranks (``SLAPTUNE_DIST_TIMEOUT_S``)."""
    raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value < 1:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: must be >= 1 second")
    return value


def timeout() -> timedelta:
    """``timeout_s()`` as the ``timedelta`` ``init_process_group(timeout=...)`` takes."""
    return timedelta(seconds=timeout_s())


def start_cpu_group(backend: str | None, seconds: int) -> None:
    """Under a launcher (``WORLD_SIZE`` > 1) on the CPU: start the process group with the
    timeout here, because transformers passes ``ddp_timeout`` on for GPUs only."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available():
        if not dist.is_initialized():
            dist.init_process_group(backend or "gloo", timeout=timedelta(seconds=seconds))


class RankTimeoutError(RuntimeError):
    """A collective failed (timed out); the message names the ranks that did not answer."""


def _missing_ranks(what: str, wait_s: float = 5.0) -> list[int] | None:
    """After a failed collective: every rank that is still alive says so in the store; the ones
    that do not within ``wait_s`` are missing. None when the store is unreachable."""
    try:
        from torch.distributed.distributed_c10d import _get_default_store

        store = _get_default_store()
        size, rank = world()
        store.set(f"slaptune/alive/{what}/{rank}", "1")
        deadline = time.monotonic() + wait_s
        missing = list(range(size))
        while missing and time.monotonic() < deadline:
            missing = [r for r in missing if not store.check([f"slaptune/alive/{what}/{r}"])]
            time.sleep(0.2)
        return missing
    except Exception:  # the store's host (rank 0) may be the one that died
        return None


_LOST_PEER = re.compile(r"timed? ?out|timeout|connection (closed|reset)|broken pipe", re.I)


def _lost_peer(e: BaseException) -> bool:
    """A collective that failed because another rank never came (not an OOM or a bug)."""
    dist_error = getattr(dist, "DistError", ())
    return world()[0] > 1 and (isinstance(e, dist_error) or bool(_LOST_PEER.search(str(e))))


def _explain(what: str, e: BaseException) -> RankTimeoutError:
    _, rank = world()
    missing = _missing_ranks(what)
    who = (
        f"rank(s) {', '.join(map(str, missing))} did not answer"
        if missing
        else "the other ranks could not be reached"
    )
    return RankTimeoutError(
        f"rank {rank}: {what} failed ({str(e).strip().splitlines()[0][:200]}); {who}: a rank "
        f"hung or died (its own log says why); the wait is {TIMEOUT_ENV}={timeout_s()} s"
    )


@contextmanager
def watch(what: str):
    """Turn a collective that timed out inside the block (ours or the Trainer's) into a
    ``RankTimeoutError`` that names the ranks that did not answer."""
    try:
        yield
    except RuntimeError as e:
        if isinstance(e, RankTimeoutError) or not _lost_peer(e):
            raise
        raise _explain(what, e) from None


def _collective(what: str, fn, *args):
    with watch(what):
        return fn(*args)


def world() -> tuple[int, int]:
    """``(world_size, rank)``, ``(1, 0)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def is_main_process() -> bool:
    return world()[1] == 0


def gather_rows(t: torch.Tensor, pad_value: float | int = 0) -> torch.Tensor:
    """Concatenate ``t`` (rows first) from every rank in rank order. Ranks may hold different
    numbers of rows and, for 2-D tensors, different widths (padded with ``pad_value``).

    >>> gather_rows(torch.ones(2, 3)).shape  # single process: unchanged
    torch.Size([2, 3])
    """
    size, _ = world()
    if size == 1:
        return t
    shape = torch.tensor([t.shape[0], t.shape[1] if t.dim() > 1 else 1], device=t.device)
    shapes = [torch.zeros_like(shape) for _ in range(size)]
    _collective("gather_rows", dist.all_gather, shapes, shape)
    rows = max(int(s[0]) for s in shapes)
    padded = t
    if t.dim() > 1:
        width = max(int(s[1]) for s in shapes)
        if t.shape[1] < width:
            extra = torch.full(
                (t.shape[0], width - t.shape[1], *t.shape[2:]),
                pad_value,
                dtype=t.dtype,
                device=t.device,
            )
            padded = torch.cat([t, extra], dim=1)
    if padded.shape[0] < rows:
        extra = torch.full(
            (rows - padded.shape[0], *padded.shape[1:]), pad_value, dtype=t.dtype, device=t.device
        )
        padded = torch.cat([padded, extra])
    out = [torch.empty_like(padded) for _ in range(size)]
    _collective("gather_rows", dist.all_gather, out, padded.contiguous())
    return torch.cat([o[: int(s[0])] for o, s in zip(out, shapes)])


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if world()[0] > 1:
        t = t.clone()
        _collective("all_reduce", dist.all_reduce, t)
    return t


def sum_float(value: float, device=None) -> float:
    """``value`` summed over ranks (float64; ``device`` must suit the backend, e.g. CUDA for
    NCCL).

    >>> sum_float(2.5)
    2.5
    """
    if world()[0] == 1:
        return value
    return float(all_reduce_sum(torch.tensor(value, dtype=torch.float64, device=device)))


def barrier() -> None:
    if world()[0] > 1:
        _collective("barrier", dist.barrier)


def shutdown() -> None:
    """Leave the process group together (barrier, then destroy): a rank that exits while its
    peer is still tearing gloo down can make the peer abort with SIGABRT at exit."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
