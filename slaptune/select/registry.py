"""Name -> selection method. A new method is one function and one ``@register`` line.

A method is ``fn(losses, features, budget, generator, **options) -> Selection`` where ``losses``
is a checked float32 CPU tensor, ``features`` is the raw argument (check it with
``check_features`` if the method needs it), and the options are keyword-only parameters with
defaults; those parameter names are the method's valid options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Selection:
    """The result of one selection.

    Attributes:
        indices: positions of the kept examples in the pool (CPU LongTensor, unique).
        weights: per-kept-example loss weights aligned with ``indices``, or None for all ones.
        strata: stratum id of every candidate in the pool (CPU LongTensor, shape (N,)) for
            stratified methods, else None.
        info: method diagnostics (e.g. ``stratum_sizes``, ``stratum_budgets`` for SLAP).
    """

    indices: torch.Tensor
    weights: torch.Tensor | None = None
    strata: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def kept_strata(self) -> torch.Tensor | None:
        """Stratum of each kept example, aligned with ``indices``."""
        return None if self.strata is None else self.strata[self.indices]


MethodFn = Callable[..., Selection]
_METHODS: dict[str, MethodFn] = {}
_OPTIONS: dict[str, tuple[str, ...]] = {}
NEEDS_FEATURES: set[str] = set()
LOSS_FREE: set[str] = set()  # methods that look at neither losses nor features


def register(
    name: str, *, needs_features: bool = False, loss_free: bool = False
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` under ``name``; its keyword-only parameters become its options."""

    def wrap(fn: MethodFn) -> MethodFn:
        params = inspect.signature(fn).parameters.values()
        _OPTIONS[name] = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        _METHODS[name] = fn
        if needs_features:
            NEEDS_FEATURES.add(name)
        if loss_free:
            LOSS_FREE.add(name)
        return fn

    return wrap


def method_names() -> tuple[str, ...]:
    return tuple(sorted(_METHODS))


def method_options(name: str) -> tuple[str, ...]:
    get_method(name)
    return _OPTIONS[name]


def get_method(name: str) -> MethodFn:
    if name not in _METHODS:
        raise ValueError(f"unknown selection method {name!r}; valid: {', '.join(method_names())}")
    return _METHODS[name]


def check_options(name: str, options: dict) -> None:
    valid = _OPTIONS[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for method {name!r}; valid: {', '.join(valid) or 'none'}"
        )
