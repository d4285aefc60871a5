"""One module per subcommand: ``add_parser(subparsers, name)`` and ``run(args)``."""

from . import bench, check_data, convert, demo, evaluate, export, generate, judge, train

__all__ = [
    "bench",
    "check_data",
    "convert",
    "demo",
    "evaluate",
    "export",
    "generate",
    "judge",
    "train",
]
