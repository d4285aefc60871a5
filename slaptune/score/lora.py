"""Per-example gradients of LoRA matrices as features (the ``feature_source="lora"`` option).

Under LoRA the output layer is frozen and has no Adam state, so the head gradient cannot be
preconditioned by the optimizer; the LoRA matrices of the last adapted module(s) can. For a LoRA
linear ``y = W x + s B A x`` and ``delta_t = dL_i / dy_t``::

    dL_i/dB = s sum_t delta_t (A x_t)^T        dL_i/dA = s sum_t (B^T delta_t) x_t^T

``delta`` comes from ONE backward of the summed per-example losses (examples do not interact in
a forward pass, so the gradient of the sum w.r.t. row ``i``'s activations is ``dL_i``'s), and only
from the first chosen module's output onward: a zero leaf is added to each chosen output and the
parameters are frozen for the pass, so no parameter gradient is computed and nothing before
that module is differentiated. The per-example matrices are small (``out x r``, ``r x in``),
so they are divided
elementwise by ``sqrt(v) + eps`` (Adam's bias-corrected second moment, where there is one) and
projected on their long side to ``k`` dimensions.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch

from .head import floored_second_moment
from .loss import example_losses


def lora_layers(model: torch.nn.Module, last: int = 1) -> list[tuple[str, torch.nn.Module]]:
    """The last ``last`` modules (in forward-definition order) that carry LoRA adapters."""
    found = [
        (n, m)
        for n, m in model.named_modules()
        if hasattr(m, "lora_A") and hasattr(m, "lora_B") and len(m.lora_A) > 0
    ]
    if not found:
        raise ValueError(
            "feature_source='lora' needs a PEFT LoRA model; none of its modules has LoRA adapters"
        )
    return found[-last:]


def _adapter(module) -> str:
    active = getattr(module, "active_adapters", None) or list(module.lora_A.keys())
    return active[0]


def lora_example_gradients(model, inputs: dict, labels: torch.Tensor, last: int = 1):
    """Exact per-example LoRA gradients of the chosen modules and the per-example losses.

    Returns ``(grads, losses, valid)`` with ``grads[name] = (G_B: (N, out, r), G_A: (N, r, in))``.
    """
    layers = lora_layers(model, last)
    store: dict[str, dict] = {name: {} for name, _ in layers}
    frozen = [p for p in model.parameters() if p.requires_grad]
    with ExitStack() as stack:
        for name, module in layers:
            a = module.lora_A[_adapter(module)]

            def grab_a(_m, args, out, s=store[name]):
                s["x"], s["u"] = args[0].detach(), out.detach()

            def leaf(_m, _args, out, s=store[name]):
                # y + 0-leaf: same value, and d(loss)/d(leaf) is the total derivative w.r.t. this
                # module's output, while gradients still flow through y to earlier chosen modules.
                s["y"] = torch.zeros_like(out, requires_grad=True)
                return out + s["y"]

            stack.callback(a.register_forward_hook(grab_a).remove)
            stack.callback(module.register_forward_hook(leaf).remove)
        for p in frozen:
            p.requires_grad_(False)
        stack.callback(lambda: [p.requires_grad_(True) for p in frozen])
        with torch.enable_grad():
            logits = model(**inputs, use_cache=False).logits
            losses, valid = example_losses(logits, labels)
            deltas = torch.autograd.grad(losses.sum(), [store[n]["y"] for n, _ in layers])
    grads = {}
    for (name, module), delta in zip(layers, deltas):
        s, key = store[name], _adapter(module)
        scale = module.scaling[key]
        b_weight = module.lora_B[key].weight.detach()  # (out, r)
        g_b = scale * torch.einsum("bto,btr->bor", delta.float(), s["u"].float())
        g_a = scale * torch.einsum("btr,bti->bri", delta.float() @ b_weight.float(), s["x"].float())
        grads[name] = (g_b, g_a)
    return grads, losses.detach(), valid


class LoraGradientSketch:
    """``(N, sum over modules of 2 k r)`` features from the last LoRA module(s)' gradients.

    Args:
        k: projection width of each matrix's long side.
        last: how many of the last LoRA modules to use.
        seed: seed of the fixed projections.
    """

    def __init__(self, k: int = 64, last: int = 1, seed: int = 0):
        self.k, self.last, self.seed = k, last, seed
        self._proj: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.last_preconditioner = "identity"

    def _projection(self, name, out_dim, in_dim, device):
        if name not in self._proj:
            g = torch.Generator().manual_seed(self.seed + len(self._proj))
            self._proj[name] = (
                torch.randn(out_dim, self.k, generator=g) / self.k**0.5,
                torch.randn(in_dim, self.k, generator=g) / self.k**0.5,
            )
        r_out, r_in = self._proj[name]
        return r_out.to(device), r_in.to(device)

    def __call__(
        self, model, inputs, labels, second_moment_fn=None, eps: float = 1e-8, floor: float = 0.0
    ):
        """``(features, losses, valid)``; ``second_moment_fn(param) -> (v | None, how)``; ``v``
        floored at ``floor x mean(v)`` as for the output layer (``floored_second_moment``)."""
        grads, losses, valid = lora_example_gradients(model, inputs, labels, self.last)
        modules = dict(model.named_modules())
        parts, how = [], "identity"
        for name, (g_b, g_a) in grads.items():
            module = modules[name]
            key = _adapter(module)
            if second_moment_fn is not None:
                for which, g in (("B", g_b), ("A", g_a)):
                    param = (module.lora_B if which == "B" else module.lora_A)[key].weight
                    v, how = second_moment_fn(param)
                    if v is not None:
                        v = floored_second_moment(v.to(g.device), floor, eps)
                        g.div_(v.sqrt() + eps)
            r_out, r_in = self._projection(name, g_b.shape[1], g_a.shape[2], g_b.device)
            parts.append(torch.einsum("bor,ok->brk", g_b, r_out).flatten(1))
            parts.append(torch.einsum("bri,ik->brk", g_a, r_in).flatten(1))
        self.last_preconditioner = how
        return torch.cat(parts, dim=1), losses, valid
