"""How well do the gradient features keep the *direction* of each example's preconditioned
gradient? Measured on a model small enough to form every per-example output-layer gradient.

Reference (LESS's bounded preconditioning, exact): ``G_i / (sqrt(b2 v + (1 - b2) G_i^2) + eps)``
with ``v`` Adam's bias-corrected second moment after a short AdamW run, where only part of the
vocabulary was trained (as in a real fine-tune: most output rows keep ``v ~ 0``). Candidates:
the sketched features (``HeadGradientSketch``, kv = kd = 64) with the rank-1 preconditioner at
several floors, and with none. Score: Pearson correlation between the candidates' and the
reference's pairwise cosine similarities (off-diagonal), and the correlation of each feature's
norm with 1/sqrt(answer tokens) (size that tracks answer length is what unit normalisation
removes).

    python benchmarks/feature_fidelity.py            # prints a markdown table
"""

from __future__ import annotations

import argparse

import torch

from slaptune.models.presets import build_model
from slaptune.score import (
    HeadGradientSketch,
    adam_second_moment,
    capture_head_input,
    head_gradients,
    output_layer,
)

VOCAB, USED, PROMPT, LENGTH = 4096, 96, 8, 56


def batch(g, n, rare: float = 0.0):
    """``n`` rows of tokens from the first ``USED`` ids; a ``rare`` share of the measured rows
    carry one token the training never saw (the review's rare-token rows)."""
    ids = torch.randint(3, USED, (n, LENGTH), generator=g)
    for i in range(n):
        if float(torch.rand(1, generator=g)) < rare:
            ids[i, int(torch.randint(PROMPT + 1, LENGTH, (1,), generator=g))] = int(
                torch.randint(USED, VOCAB, (1,), generator=g)
            )
    answer = torch.randint(1, LENGTH - PROMPT, (n,), generator=g)
    labels = ids.clone()
    labels[:, :PROMPT] = -100
    for i, a in enumerate(answer.tolist()):
        labels[i, PROMPT + a :] = -100
    return ids, labels, answer


def offdiag_cos(x: torch.Tensor) -> torch.Tensor:
    u = x / x.norm(dim=1, keepdim=True).clamp(min=1e-30)
    c = u @ u.T
    return c[~torch.eye(c.shape[0], dtype=torch.bool)]


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-30))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="AdamW steps before measuring")
    p.add_argument("--n", type=int, default=64, help="examples measured")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rare", type=float, default=0.25, help="share of rows with a rare token")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model = build_model("llama-1m", VOCAB, seed=a.seed, max_positions=64)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(a.seed + 1)
    for _ in range(a.steps):
        ids, labels, _ = batch(g, 16)
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    head = output_layer(model)
    v, _ = adam_second_moment(opt, head.weight)
    ids, labels, answer = batch(g, a.n, rare=a.rare)
    with torch.no_grad(), capture_head_input(head) as store:
        logits = model(input_ids=ids).logits
    hidden = store["hidden"]
    grads = head_gradients(logits, hidden, labels).view(a.n, *v.shape)
    b2 = opt.param_groups[0]["betas"][1]
    ref = (grads / ((b2 * v + (1 - b2) * grads**2).sqrt() + 1e-8)).flatten(1)
    ref_cos = offdiag_cos(ref)
    inv_sqrt_len = 1.0 / answer.float().sqrt()
    row_means = v.mean(1)
    print(
        f"output rows with mean v below 1% of the overall mean: "
        f"{int((row_means < 0.01 * v.mean()).sum())} of {v.shape[0]}\n"
    )
    print(
        "| features | cosine corr. with reference | norm vs 1/sqrt(answer) corr. "
        "| max/median norm |"
    )
    print("|---|---|---|---|")
    sketch = HeadGradientSketch(v.shape[0], v.shape[1], 64, 64, seed=a.seed)
    rows = [("exact, un-floored (adam_exact, floor 0)", (grads / (v.sqrt() + 1e-8)).flatten(1))]
    for floor in (0.0, 0.01, 0.1, 0.3, 1.0):
        f = sketch(logits, hidden, labels, v, precondition="adam_rank1", floor=floor)
        rows.append((f"sketch, adam_rank1, floor {floor}", f))
    rows.append(("sketch, no preconditioning", sketch(logits, hidden, labels, None)))
    for kv, kd in ((128, 32), (256, 16), (512, 8)):  # the same 4096 dimensions, shaped otherwise
        other = HeadGradientSketch(v.shape[0], v.shape[1], kv, kd, seed=a.seed)
        f = other(logits, hidden, labels, v, precondition="adam_rank1", floor=1.0)
        rows.append((f"sketch kv={kv} kd={kd}, adam_rank1, floor 1.0", f))
        rows.append((f"sketch kv={kv} kd={kd}, no preconditioning", other(logits, hidden, labels)))
    for name, f in rows:
        n = f.norm(dim=1)
        print(
            f"| {name} | {corr(offdiag_cos(f), ref_cos):.3f} | {corr(n, inv_sqrt_len):.3f} "
            f"| {float(n.max() / n.median()):.1f} |"
        )


if __name__ == "__main__":
    main()
