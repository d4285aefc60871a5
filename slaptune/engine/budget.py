"""How many rows a pool keeps, and how they are shared out over its optimizer steps. Pure.

Every rank must run every micro-batch with the same number of rows (DDP), so the kept count
is a multiple of ``unit = micro-batches per step x world size``; a pool of ``steps`` windows
keeps at least one unit per step.

>>> kept_count(budget=22, n_valid=32, n_forced=0, n_rows=32, unit=2)
22
>>> kept_count(budget=23, n_valid=32, n_forced=0, n_rows=32, unit=4)  # rounded to the unit
24
>>> kept_count(budget=32, n_valid=32, n_forced=0, n_rows=32, unit=2) is None  # keeps all
True
>>> per_step_counts(44, unit=2, steps=4)
[12, 12, 10, 10]
"""

from __future__ import annotations


def kept_count(
    budget: int, n_valid: int, n_forced: int, n_rows: int, unit: int, steps: int = 1
) -> int | None:
    """Rows to keep of a pool of ``n_rows`` (``n_valid`` with a supervised token,
    ``n_forced`` of them kept whatever the method says, e.g. never scored in reuse mode), or
    None when the pool is trained whole (nothing left to prune, or too small to prune).

    Args:
        budget: the method's wish, ``round(keep_ratio x n_valid)``.
        unit: rows per step must be a multiple of this.
        steps: optimizer steps the pool feeds (each gets at least one unit).
    """
    if unit < 1 or steps < 1:
        raise ValueError(f"unit and steps must be >= 1, got {unit}, {steps}")
    k = max(budget, n_forced)
    k = max(round(k / unit), steps) * unit
    k = min(k, (n_valid // unit) * unit)
    k = max(k, -(-n_forced // unit) * unit)
    if k < steps * unit or k > n_valid or k == n_rows:
        return None
    return k


def per_step_counts(kept: int, unit: int, steps: int) -> list[int]:
    """Share ``kept`` rows (a multiple of ``unit``) over ``steps`` steps in whole units, as
    evenly as possible, the first steps one unit larger."""
    units = kept // unit
    if units * unit != kept or units < steps:
        raise ValueError(f"{kept} rows do not split into {steps} steps of whole units of {unit}")
    return [(units // steps + (1 if j < units % steps else 0)) * unit for j in range(steps)]
