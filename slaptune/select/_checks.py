"""Input validation shared by every selection method.

Selection runs at every optimizer step for hours; a NaN that slips through here would make
farthest-point selection pick garbage silently, so every check raises a ``ValueError`` that says
what is wrong and where.
"""

from __future__ import annotations

import math

import torch


def check_losses(losses: torch.Tensor) -> torch.Tensor:
    """Return ``losses`` as a 1-D float32 CPU tensor, or raise if it is malformed or not finite."""
    if not isinstance(losses, torch.Tensor):
        raise ValueError(
            f"losses must be a torch.Tensor of shape (N,), got {type(losses).__name__}"
        )
    if losses.dim() != 1:
        raise ValueError(f"losses must have shape (N,), got {tuple(losses.shape)}")
    losses = losses.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(losses)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise ValueError(
            f"losses contain {int(bad.sum())} non-finite value(s) (first at index {first}: "
            f"{losses[first].item()}); drop examples with no supervised token before selecting"
        )
    return losses


def check_features(features: torch.Tensor | None, n: int, method: str) -> torch.Tensor:
    """Return ``features`` as a 2-D float32 tensor on its own device, or raise."""
    if features is None:
        raise ValueError(
            f"method {method!r} needs features of shape (N, d); pass features= "
            "(e.g. from slaptune.score.HeadGradientSketch) or choose a loss-only method"
        )
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"features must be a tensor of shape (N, d), got {shape}")
    if features.shape[0] != n:
        raise ValueError(f"features has {features.shape[0]} rows but losses has {n}")
    features = features.detach().to(torch.float32)
    bad = ~torch.isfinite(features)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"features contain {int(bad.sum())} non-finite value(s) (first in row {row}); "
            "check the scoring forward (overflow in low precision?)"
        )
    return features


def check_budget(budget: int, n: int) -> int:
    """Return ``budget`` as an int in ``[0, n]``, or raise."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        if (
            isinstance(budget, torch.Tensor)
            and budget.numel() == 1
            and not budget.is_floating_point()
        ):
            budget = int(budget)
        else:
            raise ValueError(f"budget must be an int (number of examples to keep), got {budget!r}")
    if not 0 <= budget <= n:
        raise ValueError(f"budget must be in [0, {n}] for a pool of {n} examples, got {budget}")
    return budget


def positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def positive_float(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(name: str, value, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")
