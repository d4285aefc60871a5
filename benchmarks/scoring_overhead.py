"""Cost of on-policy signals relative to the scoring forward they ride on.

For tiny Llama configs of ~1M, ~5M and ~20M parameters (vocabulary 8192) at batch 16 x 256
tokens (the last 3/4 of each row supervised), times: the no-grad scoring forward, per-example loss
extraction from its logits, and loss + output-layer gradient sketch in one pass (what SLAP runs)
at kv x kd in 32x32, 64x64, 128x64 (with Adam rank-1 preconditioning), as ratios to the forward;
the sketch's own share is the difference to the loss alone. Median of repeats.

    python benchmarks/scoring_overhead.py                 # the table in docs/results.md
    python benchmarks/scoring_overhead.py --sizes 5m --repeats 3

With ``--model FOLDER`` (a real model, e.g. SmolLM2-135M-Instruct from
``benchmarks/prepare_model.py``): the shipped sketch (``SelectionConfig``'s kv x kd and
precondition floor) and the previous 64 x 64, with rank-1 Adam preconditioning; the sketch's
parts; and the LoRA feature source (PEFT all-linear r 8, features of the last LoRA module)
against the LoRA model's own no-grad forward. On one torch thread, timed in process CPU
seconds (not wall clock: on a shared machine the wall clock measures the neighbours),
interleaved (forward, then each signal, per repeat); each ratio is the median of per-repeat
ratios:

    python benchmarks/scoring_overhead.py --model runs/models/smollm2-135m-instruct \
        --batch 4 --seq 128 --repeats 3
    python benchmarks/scoring_overhead.py --model runs/models/smollm2-135m-instruct \
        --lora-step --repeats 2     # CPU s per token of a LoRA step: sizes the realistic suite

Target: sketch <= 10% of the forward at 20M with kv = kd = 64.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from slaptune.config import SelectionConfig
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


def interleaved(fns: dict, repeats: int, clock=time.process_time) -> dict:
    """Median seconds of each function, and median per-repeat ratio to ``fns['forward']``."""
    for fn in fns.values():
        fn()  # warm-up
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    out = {k: statistics.median(v) for k, v in times.items()}
    fwd = times["forward"]
    ratios = {k: statistics.median(t / f for t, f in zip(v, fwd)) for k, v in times.items()}
    return {"seconds": out, "ratio": ratios}


def measure_model(a) -> None:
    """The real-model table: head sketch and LoRA features as shares of the scoring forward."""
    from slaptune.models.load import load_pretrained
    from slaptune.score import LoraGradientSketch, rank1_inverse_sqrt
    from slaptune.score.loss import shift_for_next_token

    torch.set_num_threads(1)  # CPU time of one thread: what the op costs, whatever the load
    _, model = load_pretrained(a.model)
    model.eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (a.batch, a.seq), generator=g)
    labels = ids.clone()
    labels[:, : a.seq // 4] = -100
    store = {}

    def forward(m=model):
        with torch.no_grad(), capture_head_input(output_layer(m)) as s:
            store["logits"] = m(input_ids=ids, use_cache=False).logits
            store["hidden"] = s["hidden"]

    forward()
    logits, hidden = store["logits"], store["hidden"]
    d = hidden.shape[-1]
    second = torch.rand(vocab, d) + 0.1  # stands in for Adam's second moment (V x d)
    cfg = SelectionConfig()  # the shipped defaults: kv x kd and the precondition floor
    kv, kd, floor = cfg.sketch_vocab, cfg.sketch_hidden, cfg.precondition_floor
    sk = HeadGradientSketch(vocab, d, kv, kd)
    old = HeadGradientSketch(vocab, d, 64, 64)  # the previous default, for comparison
    z, y = shift_for_next_token(logits, labels)
    zs = z[y != -100]
    probs = torch.softmax(zs.float(), -1)

    head = interleaved(
        {
            "forward": forward,
            "loss": lambda: example_losses(logits, labels),
            f"loss + sketch {kv}x{kd} (identity)": lambda: sk.with_losses(
                logits, hidden, labels, None, precondition="none"
            ),
            f"loss + sketch {kv}x{kd} (rank-1 Adam, floor {floor}; the default)": lambda: (
                sk.with_losses(logits, hidden, labels, second, floor=floor)
            ),
            "loss + sketch 64x64 (rank-1 Adam; the previous default)": lambda: old.with_losses(
                logits, hidden, labels, second, floor=floor
            ),
            "part: rank-1 factors of V x d": lambda: rank1_inverse_sqrt(second, floor=floor),
            "part: logsumexp over V, fp32": lambda: torch.logsumexp(zs.float(), -1),
            f"part: p @ R_V (V x {kv})": lambda: probs @ sk.r_vocab,
        },
        a.repeats,
    )
    params = sum(p.numel() for p in model.parameters()) / 1e6
    n_sup = int((labels[:, 1:] != -100).sum())
    print(
        f"model {a.model}: {params:.1f}M parameters, vocabulary {vocab}, batch {a.batch} x "
        f"{a.seq} ({n_sup} supervised tokens), torch threads {torch.get_num_threads()}, "
        f"{a.repeats} interleaved repeats, process CPU seconds"
    )
    print(
        f"output layer: {2 * vocab * d / 1e6:.1f} of {2 * params:.0f} MFLOP per token in the "
        f"forward ({vocab * d / (params * 1e6):.3f}); a gradient back through it costs as much"
    )
    print(  # the sketch's irreducible part: the softmax projected on kv directions
        f"sketch projection p @ R_V: {2 * vocab * kv / 1e6:.1f} MFLOP per supervised token, "
        f"{vocab * kv / (params * 1e6):.3f} of the forward"
    )
    print("| signal | CPU seconds (median) | share of the scoring forward |")
    print("|---|---|---|")
    for k, v in head["seconds"].items():
        print(f"| {k} | {v:.3f} | {head['ratio'][k]:.3f} |")
    if a.no_lora:
        return
    from peft import LoraConfig, get_peft_model

    lora_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    ).eval()
    lsk = LoraGradientSketch(k=64, last=1)

    def lora_forward():
        with torch.no_grad():
            lora_model(input_ids=ids, use_cache=False)

    lora = interleaved(
        {
            "forward": lora_forward,
            "LoRA features (last module, k 64)": lambda: lsk(
                lora_model, {"input_ids": ids}, labels
            ),
        },
        a.repeats,
    )
    for k, v in lora["seconds"].items():
        name = "LoRA model: no-grad forward" if k == "forward" else k
        print(f"| {name} | {v:.3f} | {lora['ratio'][k]:.3f} (of the LoRA forward) |")


def measure_lora_step(a) -> None:
    """CPU seconds per token of a LoRA training step (AdamW) and of a no-grad forward, one
    thread, batch 8 x 64 and 8 x 128: what sizes the realistic suite."""
    from peft import LoraConfig, get_peft_model

    from slaptune.models.load import load_pretrained

    torch.set_num_threads(1)
    _, model = load_pretrained(a.model)
    cfg = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    print("| batch | LoRA r 16 training step | no-grad forward |")
    print("|---|---|---|")
    for seq in (64, 128):
        ids = torch.randint(3, model.config.vocab_size, (8, seq), generator=g)
        labels = ids.clone()
        labels[:, : seq // 3] = -100

        def step(ids=ids, labels=labels):
            model.train()
            model(input_ids=ids, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()

        def forward(ids=ids):
            model.eval()
            with torch.no_grad():
                model(input_ids=ids)

        t = interleaved({"forward": forward, "step": step}, a.repeats)["seconds"]
        per = {k: 1000 * v / (8 * seq) for k, v in t.items()}
        print(
            f"| 8 x {seq} | {t['step']:.2f} CPU s ({per['step']:.1f} ms/token) | "
            f"{t['forward']:.2f} CPU s ({per['forward']:.1f} ms/token) |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1m,5m,20m")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", default=None, help="a model folder or .gguf: the real-model table")
    p.add_argument("--no-lora", action="store_true", help="--model: skip the LoRA rows")
    p.add_argument(
        "--lora-step", action="store_true", help="--model: LoRA training step cost per token"
    )
    a = p.parse_args()
    if a.model and a.lora_step:
        measure_lora_step(a)
        return
    if a.model:
        measure_model(a)
        return
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
