"""Pure selection algorithms: tensors in, indices out. Imports torch and the stdlib only.

>>> import torch
>>> from slaptune.select import select
>>> g = torch.Generator().manual_seed(0)
>>> sel = select("slap", torch.rand(100), torch.randn(100, 16), 70, generator=g, num_strata=5)
>>> sel.indices.shape, len(set(sel.indices.tolist()))
(torch.Size([70]), 70)
"""

from __future__ import annotations

import torch

from . import methods as _methods  # noqa: F401  (registers the methods)
from ._checks import check_budget, check_losses
from .registry import (
    MethodSpec,
    Selection,
    check_options,
    get_method,
    get_spec,
    method_names,
    register,
    unregister,
)
from .strata import assign_strata, stratum_budgets

__all__ = [
    "MethodSpec",
    "Selection",
    "get_spec",
    "assign_strata",
    "method_names",
    "register",
    "unregister",
    "select",
    "stratum_budgets",
]


def select(
    method: str,
    losses: torch.Tensor,
    features: torch.Tensor | None,
    budget: int,
    *,
    generator: torch.Generator | None = None,
    **options,
) -> Selection:
    """Choose ``budget`` of the ``N`` candidates with the named method.

    Args:
        method: one of :func:`method_names` (``slap``, ``random``, ``hard``, ``ccs``,
            ``infobatch``, ``kcenter``, ``selective_backprop``, ``full``).
        losses: ``(N,)`` per-example losses of the current model; must be finite.
        features: ``(N, d)`` per-example features (any device or dtype; distances are computed in
            float32 on the features' device) or None for loss-only methods.
        budget: number of examples to keep, ``0 <= budget <= N``.
        generator: a CPU ``torch.Generator``; the same seed gives the same selection.
        options: method options (e.g. ``num_strata``, ``temperature``, ``binning`` for SLAP).

    Returns:
        A :class:`Selection` with CPU indices.
    """
    fn = get_method(method)
    check_options(method, options)
    losses = check_losses(losses)
    budget = check_budget(budget, losses.numel())
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (selection draws on the CPU)")
    sel = fn(losses, features, budget, generator, **options)
    sel.info.setdefault("method", method)
    return sel
