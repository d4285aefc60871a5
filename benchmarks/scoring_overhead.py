"""Cost of on-policy signals relative to the scoring forward they ride on.

For tiny Llama configs of ~1M, ~5M and ~20M parameters (vocabulary 8192) at batch 16 x 256
tokens (the last 3/4 of each row supervised), times: the no-grad scoring forward, per-example loss
extraction from its logits, and loss + output-layer gradient sketch in one pass (what SLAP runs)
at kv x kd in 32x32, 64x64, 128x64 (with Adam rank-1 preconditioning), as ratios to the forward;
the sketch's own share is the difference to the loss alone. Median of repeats.

    python benchmarks/scoring_overhead.py                 # the table in docs/results.md
    python benchmarks/scoring_overhead.py --sizes 5m --repeats 3

Target: sketch <= 10% of the forward at 20M with kv = kd = 64.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from slaptune.models.presets import build_model
from slaptune.score import HeadGradientSketch, capture_head_input, example_losses, output_layer

SIZES = ("1m", "5m", "20m")  # slaptune.models.presets llama-<size>
SKETCHES = ((32, 32), (64, 64), (128, 64))


def build(size: str, vocab: int):
    return build_model(f"llama-{size}", vocab, seed=0, max_positions=512).eval()


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(size: str, a) -> str:
    """One table row: forward time, and loss / sketch costs as ratios to it."""
    g = torch.Generator().manual_seed(0)
    model = build(size, a.vocab)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    ids = torch.randint(3, a.vocab, (a.batch, a.seq), generator=g)
    labels = ids.clone()
    labels[:, : a.seq // 4] = -100
    store = {}

    def forward():
        with torch.no_grad(), capture_head_input(output_layer(model)) as s:
            store["logits"] = model(input_ids=ids, use_cache=False).logits
            store["hidden"] = s["hidden"]

    fwd = median_time(forward, a.repeats)
    logits, hidden = store["logits"], store["hidden"]
    second = torch.rand(a.vocab, hidden.shape[-1]) + 0.1
    loss = median_time(lambda: example_losses(logits, labels), a.repeats)
    cells = [f"{loss / fwd:.3f}"]
    for kv, kd in SKETCHES:
        sk = HeadGradientSketch(a.vocab, hidden.shape[-1], kv, kd)
        both = median_time(lambda sk=sk: sk.with_losses(logits, hidden, labels, second), a.repeats)
        cells.append(f"{both / fwd:.3f} ({(both - loss) / fwd:+.3f})")
    return f"| {size} | {params:.2f} | {fwd:.3f} | " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1m,5m,20m")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {a.batch} x "
        f"{a.seq}, vocab {a.vocab}. Cells: time / forward; sketch cells are loss + sketch in "
        "one pass, (in brackets: what the sketch adds over the loss alone)"
    )
    cols = ["loss"] + [f"loss + sketch {kv}x{kd}" for kv, kd in SKETCHES]
    print("| model | params (M) | forward (s) | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for size in a.sizes.split(","):
        print(measure(size, a), flush=True)


if __name__ == "__main__":
    main()
