"""LoRA gradient features: exact per-example gradients against a per-example backward loop."""

import pytest
import torch

from slaptune.score import LoraGradientSketch, lora_example_gradients, lora_layers
from tests.conftest import prompt_completion_batch


@pytest.fixture
def lora_model(tiny_model):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(
        tiny_model("llama-tiny"), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    for n, p in model.named_parameters():  # non-zero B so that dL/dA is not trivially 0
        if "lora_B" in n:
            p.data.normal_(0, 0.1)
    return model.eval()


def test_lora_gradients_equal_per_example_backward(lora_model):
    ids, labels = prompt_completion_batch(4, 10, 64)
    grads, losses, valid = lora_example_gradients(lora_model, {"input_ids": ids}, labels, last=2)
    names = [n for n, _ in lora_layers(lora_model, 2)]
    assert list(grads) == names
    modules = dict(lora_model.named_modules())
    for i in range(4):
        lora_model.zero_grad()
        out = lora_model(input_ids=ids[i : i + 1]).logits
        z, y = out[0, :-1], labels[i, 1:]
        m = y != -100
        loss = torch.nn.functional.cross_entropy(z[m], y[m])
        assert loss.item() == pytest.approx(losses[i].item(), rel=1e-5)
        loss.backward()
        for name in names:
            b = modules[name].lora_B["default"].weight.grad
            a = modules[name].lora_A["default"].weight.grad
            torch.testing.assert_close(grads[name][0][i], b, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(grads[name][1][i], a, rtol=1e-4, atol=1e-7)
    # Parameters were frozen only for the pass.
    assert all(p.requires_grad for n, p in lora_model.named_parameters() if "lora_" in n)


def test_lora_sketch_shape_and_preconditioning(lora_model):
    ids, labels = prompt_completion_batch(3, 10, 64)
    sk = LoraGradientSketch(k=8, last=1)
    feats, losses, valid = sk(lora_model, {"input_ids": ids}, labels)
    assert feats.shape == (3, 2 * 8 * 4) and sk.last_preconditioner == "identity"
    doubled, _, _ = sk(
        lora_model, {"input_ids": ids}, labels, lambda p: (torch.full_like(p, 4.0), "adam")
    )
    torch.testing.assert_close(doubled, feats / 2.0, rtol=1e-4, atol=1e-8)
    assert sk.last_preconditioner == "adam"
