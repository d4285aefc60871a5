"""Every ``torch.distributed`` call in slaptune lives here, with single-process fallbacks.

Selection is global: each rank gathers every rank's rows, losses and features, all ranks run
the same selection from the same seeded generator, and the kept rows are dealt back evenly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


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
    dist.all_gather(shapes, shape)
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
    dist.all_gather(out, padded.contiguous())
    return torch.cat([o[: int(s[0])] for o, s in zip(out, shapes)])


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if world()[0] > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def barrier() -> None:
    if world()[0] > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group together (barrier, then destroy): a rank that exits while its
    peer is still tearing gloo down can make the peer abort with SIGABRT at exit."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
