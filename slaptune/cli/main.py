"""``slaptune <command>``: train, eval, generate, export, convert, check-data, demo, bench.

Expected failures (bad data, bad options, missing or unwritable files, a full disk) end with one
line ``slaptune: error: ...`` and exit status 2; tracebacks are for bugs.
"""

from __future__ import annotations

import os
import sys

from . import commands
from .errors import describe
from .options import Parser

COMMANDS = {
    "train": commands.train,
    "eval": commands.evaluate,
    "generate": commands.generate,
    "export": commands.export,
    "convert": commands.convert,
    "check-data": commands.check_data,
    "demo": commands.demo,
    "bench": commands.bench,
    "judge": commands.judge,
}


def build_parser() -> Parser:
    from .. import __version__

    p = Parser(
        prog="slaptune",
        description="On-policy stratified loss-based data pruning (SLAP) for instruction tuning.",
    )
    p.add_argument("--version", action="version", version=f"slaptune {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Offline unless asked: a model or dataset name is never fetched by surprise. Set before
    # anything imports huggingface_hub, which reads the variable once.
    if getattr(args, "online", False):
        os.environ["HF_HUB_OFFLINE"] = "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = int(COMMANDS[args.command].run(args) or 0)
        from ..engine.distributed import (
            shutdown,  # under torchrun: leave the process group together
        )

        shutdown()
        return code
    except KeyboardInterrupt:
        print(
            "slaptune: interrupted; a run with checkpoints continues with --resume", file=sys.stderr
        )
        return 130
    except Exception as e:
        message = describe(e)
        if message is None:
            raise
        first, *rest = message.splitlines() or [type(e).__name__]
        print(f"slaptune: error: {first}", file=sys.stderr)
        for line in rest:
            print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
