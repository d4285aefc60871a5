"""``slaptune check-data``: every problem of a dataset, with file and line, before training.

It runs the same reader and checks as ``train`` (so whatever ``train`` refuses, this refuses),
and prints a problem shared by many records once, with its count and the fields present.
"""

from __future__ import annotations

from ...data.formats import FORMATS
from ..options import add_online_flag


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="validate data files in a given format",
        description="Check data files the way 'train' reads them; exit 2 if any problem.",
    )
    data = p.add_argument_group("data options")
    data.add_argument("files", nargs="*", help="data files (JSONL, JSON, Parquet, CSV) or folders")
    data.add_argument("--data-format", required=True, choices=FORMATS, help="the records' format")
    data.add_argument(
        "--columns",
        action="append",
        help="field mapping FORMAT_FIELD=FILE_FIELD,... once for all files or once per file "
        "(default: none)",
    )
    data.add_argument("--dataset-name", default="", help="a hub dataset id (default: none)")
    data.add_argument("--dataset-config", default="", help="its configuration (default: none)")
    data.add_argument("--split", default="train", help="its split (default: train)")
    data.add_argument(
        "--source-lang", default="", help="translation: source language code (default: none)"
    )
    data.add_argument(
        "--target-lang", default="", help="translation: target language code (default: none)"
    )
    model = p.add_argument_group("model options")
    model.add_argument(
        "--model",
        help="also tokenise with this model folder or preset and flag "
        "examples with nothing supervised left after truncation (default: none)",
    )
    model.add_argument(
        "--max-length", type=int, default=256, help="tokens per example (default: 256)"
    )
    model.add_argument(
        "--chat-template", default="", help="a Jinja file or built-in name (default: none)"
    )
    model.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped in the model folder (default: off)",
    )
    add_online_flag(model)


def run(args) -> int:
    from ...data.io import summarise
    from ...data.sources import load_sources
    from ...pipeline.prepare import run_sources
    from ...pipeline.run_config import RunConfig

    if not args.files and not args.dataset_name:
        raise ValueError("nothing to check: give data files (or --dataset-name)")
    cfg = RunConfig(
        model=args.model or "llama-1m",
        data=list(args.files),
        data_format=args.data_format,
        columns=args.columns or [],
        dataset_name=args.dataset_name,
        dataset_config=args.dataset_config,
        split=args.split,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
        max_length=args.max_length,
        chat_template=args.chat_template,
        trust_remote_code=args.trust_remote_code,
    )
    sources = run_sources(cfg)
    groups, problems = load_sources(
        sources, source_lang=args.source_lang or None, target_lang=args.target_lang or None
    )
    examples = [x for g in groups for x in g]
    if args.model and examples:
        from ...data.tokenize import tokenize_examples
        from ...pipeline.prepare import example_text, load_tokenizer_and_model

        tok, _ = load_tokenizer_and_model(cfg, [example_text(e) for e, _ in examples])
        _, bad, _ = tokenize_examples(tok, examples, args.max_length)
        problems += bad
    for line in summarise(problems):
        print(line)
    names = ", ".join(s.path for s in sources)
    if problems:
        total = len(examples) + sum(1 for p in problems if "truncation" not in p.message)
        raise ValueError(
            f"{len(problems)} problem(s) in {total} record(s) of {names}; see the lines above"
        )
    if not examples:
        raise ValueError(f"no usable example in {names}")
    print(f"ok: {len(examples)} record(s), format {args.data_format}, no problem found")
    return 0
