"""``slaptune demo``: the embedded default; nothing to download, a few minutes on 2 CPU cores."""

from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="train full data vs SLAP vs random on built-in data")
    p.add_argument(
        "--output-dir",
        default=None,
        help="default: runs/demo, or runs/demo-2, -3, ... if that is taken",
    )
    p.add_argument("--keep-ratio", type=float, default=0.7)
    p.add_argument("--model", default="llama-5m", help="a model preset")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--n-train", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def free_output_dir(base: str = "runs/demo") -> str:
    """``base`` if it is free (missing or empty), else the first free ``base-2``, ``base-3``, ...

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> free_output_dir(os.path.join(d, "demo")).endswith("demo")
    True
    >>> os.makedirs(os.path.join(d, "demo", "x"))
    >>> free_output_dir(os.path.join(d, "demo")).endswith("demo-2")
    True
    """
    import os

    candidate, n = base, 1
    while os.path.exists(candidate) and os.listdir(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def run(args) -> int:
    from ...pipeline.demo import run_demo

    run_demo(
        args.output_dir or free_output_dir(),
        keep_ratio=args.keep_ratio,
        model=args.model,
        epochs=args.epochs,
        n_train=args.n_train,
        seed=args.seed,
        progress=not args.no_progress,
        threads=args.threads,
    )
    return 0
