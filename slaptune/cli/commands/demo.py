"""``slaptune demo``: the embedded default; nothing to download, a few minutes on 2 CPU cores."""

from __future__ import annotations

import os


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="train full data vs SLAP vs random on built-in data",
        description="Four short runs on the embedded multi-task data (nothing to download): "
        "full data, SLAP fresh, SLAP reuse and random at the same keep ratio.",
    )
    p.add_argument("--model", default="llama-5m", help="a model preset (default: llama-5m)")
    p.add_argument(
        "--n-train", type=int, default=1200, help="embedded training examples (default: 1200)"
    )
    p.add_argument(
        "--keep-ratio",
        type=float,
        default=0.7,
        help="share kept by the pruned runs, in (0, 1] (default: 0.7)",
    )
    p.add_argument("--epochs", type=float, default=3.0, help="training epochs (default: 3.0)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, model and order (default: 0)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: 0, torch's)")
    p.add_argument(
        "--output-dir",
        default=None,
        help="where the runs and report go (default: runs/demo, or runs/demo-2, -3, ... if "
        "that is taken)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (default: off)")


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
    from ...pipeline.run_config import RunConfig
    from ..errors import check_writable, describe, remove_partial

    if args.n_train < 1:
        raise ValueError(f"--n-train must be >= 1, got {args.n_train}")
    # The options the runs share, checked before the demo writes anything.
    RunConfig(
        model=args.model, keep_ratio=args.keep_ratio, epochs=args.epochs, threads=args.threads
    )
    output_dir = args.output_dir or free_output_dir()
    check_writable(output_dir)
    existed = os.path.exists(output_dir)
    try:
        run_demo(
            output_dir,
            keep_ratio=args.keep_ratio,
            model=args.model,
            epochs=args.epochs,
            n_train=args.n_train,
            seed=args.seed,
            progress=not args.no_progress,
            threads=args.threads,
        )
    except Exception as e:  # an expected failure (a full disk): one line, no half a demo
        message = describe(e)
        if message is None:
            raise
        raise ValueError(message + remove_partial(output_dir, existed)) from None
    return 0
