"""Name -> ``MethodSpec``: the one owner of everything method-specific.

A method is ``fn(losses, features, budget, generator, **options) -> Selection`` where ``losses``
is a checked float32 CPU tensor, ``features`` is the raw argument (check it with
``check_features`` if the method needs it), and the options are keyword-only parameters with
defaults; those parameters are the method's options, their defaults its defaults, and the
method's own argument checks its checks. ``@register`` adds what the engine needs to know
about it (does it need features, look at losses at all, keep everything, take its threshold
from the score table, anneal by default). Adding a method is one function and one
``@register`` line: the config, the engine, the CLI and the bench all derive from its spec.

>>> spec = get_spec("ccs")
>>> spec.options
{'hard_cut': 0.1, 'num_strata': 5}
>>> spec.check({"hard_cut": 2.0})
Traceback (most recent call last):
...
ValueError: hard_cut must be in [0, 1), got 2.0
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


@dataclass(frozen=True)
class MethodSpec:
    """What the rest of slaptune knows about a method.

    Attributes:
        name: registered name.
        fn: the selection function.
        options: option name -> default (the keyword-only parameters of ``fn``).
        needs_features: it reads per-example features (gradient sketches).
        uses_losses: it reads losses (False: no scoring is paid at all).
        keeps_everything: it never prunes (the full-data baseline).
        table_threshold: with recorded scores (reuse), its ``threshold`` option is the mean
            loss of the whole score table (InfoBatch's dataset-level mean).
        anneal_after: default share of training after which every window is trained whole.
    """

    name: str
    fn: MethodFn
    options: dict
    needs_features: bool = False
    uses_losses: bool = True
    keeps_everything: bool = False
    table_threshold: bool = False
    anneal_after: float = 1.0

    def check(self, options: dict) -> None:
        """Raise a ``ValueError`` for an unknown option or a bad value, before any training:
        the method itself runs once on a 4-example pool with these options."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise ValueError(
                f"unknown option(s) {unknown} for method {self.name!r}; valid: {valid}"
            )
        g = torch.Generator().manual_seed(0)
        feats = torch.eye(4) if self.needs_features else None
        budget = 4 if self.keeps_everything else 2
        self.fn(torch.tensor([0.5, 1.0, 1.5, 2.0]), feats, budget, g, **options)

    def ignored(self, settings: dict) -> set[str]:
        """The names among ``settings`` (e.g. ``SelectionConfig`` fields) this method ignores:
        other methods' options, keep ratio when it keeps everything, and every scoring or
        feature setting when it reads no losses or no features."""
        other_options = {o for s in _SPECS.values() for o in s.options} - set(self.options)
        out = set(settings) & other_options
        if self.keeps_everything:
            out |= {"keep_ratio", "anneal_after"} & set(settings)
        if not self.uses_losses or self.keeps_everything:
            out |= set(settings) & (SCORING_SETTINGS | FEATURE_SETTINGS)
        elif not self.needs_features:
            out |= set(settings) & FEATURE_SETTINGS
        return out


# Settings of the engine (not of any method) that only matter when losses / features are read.
SCORING_SETTINGS = {"scoring", "score_dtype", "reuse_max_staleness", "reuse_unscored"}
FEATURE_SETTINGS = {
    "feature_source",
    "sketch_vocab",
    "sketch_hidden",
    "precondition",
    "precondition_floor",
    "lora_modules",
}

_SPECS: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    needs_features: bool = False,
    uses_losses: bool = True,
    keeps_everything: bool = False,
    table_threshold: bool = False,
    anneal_after: float = 1.0,
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` under ``name``; its keyword-only parameters become its options."""

    def wrap(fn: MethodFn) -> MethodFn:
        params = inspect.signature(fn).parameters.values()
        options = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        _SPECS[name] = MethodSpec(
            name,
            fn,
            options,
            needs_features=needs_features,
            uses_losses=uses_losses,
            keeps_everything=keeps_everything,
            table_threshold=table_threshold,
            anneal_after=anneal_after,
        )
        return fn

    return wrap


def unregister(name: str) -> None:
    """Remove a registered method (for tests that register a toy one)."""
    _SPECS.pop(name, None)


def method_names() -> tuple[str, ...]:
    return tuple(sorted(_SPECS))


def get_spec(name: str) -> MethodSpec:
    if name not in _SPECS:
        raise ValueError(f"unknown selection method {name!r}; valid: {', '.join(method_names())}")
    return _SPECS[name]


def method_options(name: str) -> tuple[str, ...]:
    return tuple(get_spec(name).options)


def get_method(name: str) -> MethodFn:
    return get_spec(name).fn


def check_options(name: str, options: dict) -> None:
    valid = get_spec(name).options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for method {name!r}; valid: {', '.join(valid) or 'none'}"
        )
