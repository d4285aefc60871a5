"""Which gradient features a model can give, said once on the console.

With LoRA (PEFT) the output layer is frozen: it has no gradient and no Adam state, so the default
``feature_source="head"`` would silently fall back to identity-preconditioned features. When the
model carries LoRA modules and scoring is fresh, ``resolve_feature_source`` switches to
``feature_source="lora"`` (the gradients of the last LoRA module) and says so in one line;
otherwise it warns once. ``FallbackWarner`` warns once when a run keeps getting identity features
after the first optimizer steps (at step 0 there is no optimizer state yet; that is expected).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings

from ..config import SelectionConfig
from ..engine import distributed as dist


def console(message: str) -> None:
    """One line on stderr, from the main process only."""
    if dist.is_main_process():
        print(f"slaptune: {message}", file=sys.stderr, flush=True)


def _has_lora(model) -> bool:
    return any(
        hasattr(m, "lora_A") and hasattr(m, "lora_B") and len(m.lora_A) > 0 for m in model.modules()
    )


def _head_frozen(model) -> bool:
    getter = getattr(model, "get_output_embeddings", None)
    layer = getter() if getter is not None else None
    weight = getattr(layer, "weight", None)
    return weight is not None and not weight.requires_grad


def resolve_feature_source(config: SelectionConfig, model) -> SelectionConfig:
    """``config``, with ``feature_source="lora"`` where the head is frozen and LoRA is there.

    >>> from slaptune.models.presets import build_model
    >>> model = build_model("llama-tiny", vocab_size=64)
    >>> resolve_feature_source(SelectionConfig(), model).feature_source
    'head'
    """
    if not config.spec.needs_features or config.feature_source != "head":
        return config
    if not _head_frozen(model):
        return config
    if _has_lora(model) and config.scoring == "fresh":
        console(
            "the output layer is frozen (LoRA), so gradient features come from the last LoRA "
            "module: feature_source='lora' (set feature_source explicitly to choose)"
        )
        return dataclasses.replace(config, feature_source="lora")
    why = (
        "feature_source='lora' needs scoring='fresh'"
        if _has_lora(model)
        else "the model has no LoRA modules"
    )
    warnings.warn(
        f"slaptune: the output layer is frozen, so feature_source='head' gets no Adam state and "
        f"uses identity-preconditioned features ({why})",
        UserWarning,
        stacklevel=3,
    )
    return config


class FallbackWarner:
    """Warns once when the features of a window are identity-preconditioned after step 1."""

    def __init__(self, config: SelectionConfig):
        # precondition="none" asks for the identity: nothing to warn about.
        self.warned = config.precondition == "none" or not config.spec.needs_features

    def check(self, how: str | None, step: int) -> None:
        if self.warned or step < 2 or not how or "identity" not in how:
            return
        self.warned = True
        if not dist.is_main_process():
            return
        warnings.warn(
            f"slaptune: gradient features fall back to the identity at step {step} ({how}); "
            "selection still runs, without Adam preconditioning",
            UserWarning,
            stacklevel=3,
        )
