"""``slaptune eval``: held-out loss, perplexity and task metrics of a trained model."""

from __future__ import annotations

import json
import os

from ...data.formats import FORMATS


def add_parser(sub, name):
    p = sub.add_parser(name, help="evaluate a model: loss, perplexity, BLEU/chrF, ROUGE-L, EM/F1")
    p.add_argument("model", help="a model folder (output of train or convert)")
    p.add_argument("--data", nargs="+", required=True, help="evaluation data files")
    p.add_argument("--data-format", required=True, choices=FORMATS)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--max-examples", type=int, default=0, help="0: all")
    p.add_argument(
        "--generate",
        type=int,
        default=100,
        help="examples to generate for task metrics (0: loss only)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--source-lang", default="")
    p.add_argument("--target-lang", default="")
    p.add_argument("--output", help="also write the results as JSON here")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from ...data.io import load_examples
    from ...data.tokenize import ensure_chat_template, tokenize_examples
    from ...models.load import check_model_path, load_pretrained
    from ...pipeline.evaluate import evaluate
    from ...pipeline.prepare import DataError

    check_model_path(args.model)  # a folder or a .gguf file
    examples, problems = load_examples(
        args.data,
        args.data_format,
        source_lang=args.source_lang or None,
        target_lang=args.target_lang or None,
    )
    if problems:
        raise DataError(problems, "evaluation data")
    if args.max_examples:
        examples = examples[: args.max_examples]
    tok, model = load_pretrained(args.model)
    ensure_chat_template(tok)
    rows, bad, kept = tokenize_examples(tok, examples, args.max_length)
    if not rows:
        raise DataError(bad, "evaluation data after tokenisation")
    out = evaluate(
        model,
        tok,
        rows,
        [e for e, _ in kept],
        args.generate,
        args.max_new_tokens,
        progress=not args.no_progress,
    )
    out["examples"] = len(rows)
    out["skipped_after_tokenisation"] = len(bad)
    text = json.dumps(out, indent=1)
    print(text)
    if args.output:
        with open(args.output + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.output + ".tmp", args.output)
    return 0
