"""Read the output layer's input (final hidden states) from any model without editing its code.

A forward hook on ``model.get_output_embeddings()`` (the HF convention; any ``nn.Module`` works)
records its input: for Llama, GLM, Qwen2 and GPT-2 that is the final-norm output ``h_t``, which
together with the logits gives the closed-form output-layer gradient.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def output_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The module that maps hidden states to logits (``get_output_embeddings()``)."""
    getter = getattr(model, "get_output_embeddings", None)
    layer = getter() if getter is not None else None
    if layer is None:
        raise ValueError(
            f"{type(model).__name__} has no get_output_embeddings(); pass the output layer "
            "explicitly or use feature_source='none'"
        )
    return layer


@contextmanager
def capture_head_input(layer: torch.nn.Module):
    """Within the block, ``store["hidden"]`` holds the last input seen by ``layer``.

    >>> lin = torch.nn.Linear(3, 2)
    >>> with capture_head_input(lin) as store:
    ...     _ = lin(torch.ones(1, 3))
    >>> store["hidden"].shape
    torch.Size([1, 3])
    """
    store: dict[str, torch.Tensor] = {}

    def hook(_module, args, _output):
        store["hidden"] = args[0].detach()

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder stack whose ``last_hidden_state`` feeds the output layer (PEFT unwrapped)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    getter = getattr(base, "get_decoder", None)
    dec = getter() if getter is not None else None
    if dec is None:
        dec = getattr(base, getattr(base, "base_model_prefix", ""), None)
    if dec is None or dec is base:
        raise ValueError(f"cannot find the decoder stack of {type(base).__name__}")
    return dec


@contextmanager
def capture_last_hidden(model: torch.nn.Module):
    """Within the block, ``store["hidden"]`` holds the decoder's ``last_hidden_state`` (the
    output layer's input), also for trainers whose fused LM head never calls the output layer."""
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _args, output):
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        store["hidden"] = hidden.detach()

    handle = backbone(model).register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def capture_training_outputs(model: torch.nn.Module):
    """``store["hidden"]`` (decoder output) and, when the output layer is called as a module
    (plain HF forward, not TRL's fused head), ``store["logits"]``: what reuse mode records."""
    with capture_last_hidden(model) as store:

        def hook(_module, _args, output):
            store["logits"] = output.detach()

        handle = output_layer(model).register_forward_hook(hook)
        try:
            yield store
        finally:
            handle.remove()


def adam_second_moment(optimizer, param: torch.nn.Parameter) -> tuple[torch.Tensor | None, str]:
    """Adam's bias-corrected second moment of ``param`` and a word for where it came from.

    Returns ``(None, reason)`` where there is no state: before the first optimizer step, or for a
    frozen parameter (the output layer under LoRA); the caller then falls back to the identity.
    """
    if optimizer is None:
        return None, "identity: no optimizer"
    if not param.requires_grad:
        return None, "identity: output layer frozen (LoRA?)"
    state = optimizer.state.get(param, {}) if hasattr(optimizer, "state") else {}
    if "exp_avg_sq" not in state:
        return None, "identity: no optimizer state yet (before the first step)"
    step = float(state["step"]) if "step" in state else 1.0
    beta2 = 0.999
    for group in optimizer.param_groups:
        if any(p is param for p in group["params"]):
            beta2 = group.get("betas", (0.9, 0.999))[1]
    return state["exp_avg_sq"] / (1.0 - beta2**step), "adam"
