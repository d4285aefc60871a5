"""Per-example on-policy signals: losses and gradient features. Torch only, no HF import.

>>> import torch
>>> from slaptune.score import example_losses, HeadGradientSketch
>>> logits, hidden = torch.randn(4, 8, 32), torch.randn(4, 8, 16)
>>> labels = torch.randint(0, 32, (4, 8))
>>> losses, valid = example_losses(logits, labels)
>>> HeadGradientSketch(32, 16, kv=8, kd=4)(logits, hidden, labels).shape
torch.Size([4, 32])
"""

from .capture import (
    adam_second_moment,
    backbone,
    capture_head_input,
    capture_last_hidden,
    capture_training_outputs,
    output_layer,
)
from .head import (
    HeadGradientSketch,
    floored_second_moment,
    head_gradients,
    rank1_inverse_sqrt,
)
from .lora import LoraGradientSketch, lora_example_gradients, lora_layers
from .loss import IGNORE_INDEX, example_losses, losses_from_token_logprobs, token_loss_sums

__all__ = [
    "IGNORE_INDEX",
    "HeadGradientSketch",
    "LoraGradientSketch",
    "lora_example_gradients",
    "lora_layers",
    "adam_second_moment",
    "backbone",
    "capture_last_hidden",
    "capture_training_outputs",
    "capture_head_input",
    "example_losses",
    "floored_second_moment",
    "head_gradients",
    "losses_from_token_logprobs",
    "output_layer",
    "rank1_inverse_sqrt",
    "token_loss_sums",
]
