"""``SelectionConfig``: every selection setting, one typed place (Python API, CLI flags, YAML).

The field names are the YAML keys and, with ``_`` turned into ``-``, the CLI flags. The HF and
TRL argument classes (``slaptune.integrations``) inherit these fields unchanged.

>>> SelectionConfig(method="slap", keep_ratio=0.7).budget(16)
11
>>> SelectionConfig(keep_ratio=1.5)
Traceback (most recent call last):
...
ValueError: keep_ratio must be in (0, 1], got 1.5
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .select import MethodSpec, get_spec, method_names

SCORING_MODES = ("fresh", "reuse")
SCORE_DTYPES = ("float32", "bfloat16")
FEATURE_SOURCES = ("head", "lora", "none")
PRECONDITIONERS = ("adam_rank1", "adam_exact", "none")


def _opt(default, help_: str):
    return field(default=default, metadata={"help": help_})


@dataclass
class SelectionConfig:
    """What to select, how, and from which signals. See ``docs/method.md`` for the math.

    Method options (``num_strata``, ``tilt``, ``hard_cut``, ...) are checked by the method
    itself (its ``MethodSpec`` in ``slaptune.select``); settings a method ignores are ignored.
    """

    method: str = _opt("slap", f"selection method: one of {', '.join(method_names())}")
    keep_ratio: float = _opt(0.7, "share of each candidate pool that is trained on, in (0, 1]")
    num_strata: int = _opt(5, "K, the number of loss strata (slap, ccs)")
    temperature: float = _opt(1.0, "tau in softmax(score / tau) for the per-stratum budgets")
    tilt: str = _opt(
        "rank",
        "slap budget scores: rank (scale-free, the measured best), zscore, or softmax (the "
        "paper's raw loss)",
    )
    binning: str = _opt("equal_width", "loss strata: equal_width or quantile")
    feature_norm: str = _opt(
        "unit", "slap/kcenter: unit (distances between directions) or none (raw features)"
    )
    weighting: str = _opt(
        "none",
        "slap loss weights of kept rows: none, stratified (|S_k|/M_k, unbiased) or "
        "low_rescale (InfoBatch's rescaling of kept below-mean rows)",
    )
    distance_dim: int = _opt(
        0, "slap/kcenter: project features to this many dimensions for distances (0: exact)"
    )
    hard_cut: float = _opt(0.1, "ccs: share of the hardest candidates removed first")
    scoring: str = _opt("fresh", "fresh: extra no-grad forward per window; reuse: recorded scores")
    score_dtype: str = _opt("float32", "dtype of the fresh scoring forward: float32 or bfloat16")
    feature_source: str = _opt("head", "gradient features: head (output layer), lora, or none")
    sketch_vocab: int = _opt(256, "kv, vocabulary-side projection width of the gradient sketch")
    sketch_hidden: int = _opt(16, "kd, hidden-side projection width of the gradient sketch")
    precondition: str = _opt("adam_rank1", "adam_rank1, adam_exact, or none")
    precondition_floor: float = _opt(
        1.0, "Adam second moment floored at this share of its mean (bounds the preconditioner)"
    )
    lora_modules: int = _opt(1, "feature_source=lora: how many of the last LoRA modules to use")
    selection_seed: int | None = _opt(
        None, "seed of the selection generator (same on every rank); default: the run's seed"
    )
    pool_windows: int = _opt(
        1, "select once over this many optimizer steps' windows (a larger pool, same steps)"
    )
    reuse_max_staleness: int = _opt(
        0, "reuse: re-score an example whose score is older than this many epochs (0: never)"
    )
    reuse_unscored: str = _opt(
        "keep",
        "reuse: never-scored examples are all kept (keep) or a random keep_ratio share "
        "of them (sample: no full first epoch)",
    )
    anneal_after: float | None = _opt(
        None,
        "train on everything after this share of training (default: the method's own, "
        "0.875 for infobatch, never for the others)",
    )
    selection_log: bool = _opt(True, "write selection.jsonl (kept ids and strata per step)")

    def __post_init__(self) -> None:
        if self.method not in method_names():
            raise ValueError(
                f"method must be one of {', '.join(method_names())}, got {self.method!r}"
            )
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio must be in (0, 1], got {self.keep_ratio}")
        for name, valid in (
            ("scoring", SCORING_MODES),
            ("score_dtype", SCORE_DTYPES),
            ("feature_source", FEATURE_SOURCES),
            ("precondition", PRECONDITIONERS),
            ("reuse_unscored", ("keep", "sample")),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        if self.sketch_vocab < 1 or self.sketch_hidden < 1:
            raise ValueError("sketch_vocab and sketch_hidden must be >= 1")
        if not 0.0 <= self.precondition_floor <= 1.0:
            raise ValueError(f"precondition_floor must be in [0, 1], got {self.precondition_floor}")
        if self.anneal_after is not None and not 0.0 < self.anneal_after <= 1.0:
            raise ValueError(f"anneal_after must be in (0, 1], got {self.anneal_after}")
        if self.lora_modules < 1:
            raise ValueError("lora_modules must be >= 1")
        if self.pool_windows < 1:
            raise ValueError(f"pool_windows must be >= 1, got {self.pool_windows}")
        if self.feature_source == "lora" and self.scoring == "reuse":
            raise ValueError(
                "feature_source='lora' needs a backward pass of its own, so it only "
                "works with scoring='fresh'; use feature_source='head' with reuse"
            )
        if self.reuse_max_staleness < 0:
            raise ValueError("reuse_max_staleness must be >= 0")
        self.spec.check(self.method_options())

    @property
    def spec(self) -> MethodSpec:
        """The method's spec: its options, what it reads, whether it keeps everything."""
        return get_spec(self.method)

    def budget(self, pool_size: int) -> int:
        """Examples kept from a pool of ``pool_size``: ``round(keep_ratio * N)``, at least 1."""
        if self.spec.keeps_everything:
            return pool_size
        return max(1, round(self.keep_ratio * pool_size))

    def method_options(self) -> dict:
        """The options this config passes to ``select`` for its method (those of its
        ``MethodSpec`` that are config fields)."""
        names = {f.name for f in fields(SelectionConfig)}
        return {k: getattr(self, k) for k in self.spec.options if k in names}

    def anneal_point(self) -> float:
        """Share of training after which every window is trained whole."""
        return self.spec.anneal_after if self.anneal_after is None else self.anneal_after

    def selection_fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(SelectionConfig)}

    def ignored_settings(self) -> set[str]:
        """The fields of this config its method ignores (e.g. ``num_strata`` for random)."""
        return self.spec.ignored(self.selection_fields())
