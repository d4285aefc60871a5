"""``slaptune check-data``: every problem of a dataset, with file and line, before training."""

from __future__ import annotations

from ...data.formats import FORMATS


def add_parser(sub, name):
    p = sub.add_parser(name, help="validate data files in a given format")
    p.add_argument("files", nargs="+")
    p.add_argument("--data-format", required=True, choices=FORMATS)
    p.add_argument(
        "--model",
        help="also tokenise with this model folder or preset and flag "
        "examples with nothing supervised left after truncation",
    )
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--source-lang", default="")
    p.add_argument("--target-lang", default="")


def run(args) -> int:
    from ...data.io import load_examples

    examples, problems = load_examples(
        args.files,
        args.data_format,
        source_lang=args.source_lang or None,
        target_lang=args.target_lang or None,
    )
    if args.model and examples:
        from ...data.tokenize import tokenize_examples
        from ...pipeline.prepare import example_text, load_tokenizer_and_model
        from ...pipeline.run_config import RunConfig

        cfg = RunConfig(model=args.model, data=list(args.files))
        tok, _ = load_tokenizer_and_model(cfg, [example_text(e) for e, _ in examples])
        _, bad, _ = tokenize_examples(tok, examples, args.max_length)
        problems += bad
    for p in problems:
        print(p)
    total = len(examples) + sum(1 for p in problems if "truncation" not in p.message)
    if problems:
        raise ValueError(
            f"{len(problems)} problem(s) in {total} record(s) of "
            f"{', '.join(args.files)}; see the lines above"
        )
    print(f"ok: {len(examples)} record(s), format {args.data_format}, no problem found")
    return 0
