"""``slaptune eval``: held-out loss, perplexity and task metrics of a trained model.

Every generated sample goes to a JSONL file (``--samples-file``); the console shows a few of them
and then the metrics, last, so they are what stays on the screen.
"""

from __future__ import annotations

import json
import os

from ...data.formats import FORMATS
from ..options import add_online_flag

PREVIEW = 3


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="evaluate a model: loss, perplexity, BLEU/chrF, ROUGE-L, EM/F1",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    model = p.add_argument_group("model options")
    model.add_argument("model", help="a model folder (output of train, export or convert)")
    model.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped in the model folder (default: off)",
    )
    model.add_argument(
        "--chat-template",
        default="",
        help="a Jinja file or built-in name (default: the model's own)",
    )
    add_online_flag(model)
    data = p.add_argument_group("data options")
    data.add_argument(
        "--data",
        nargs="+",
        default=[],
        help="evaluation data files (default: none; this or --dataset-name)",
    )
    data.add_argument("--dataset-name", default="", help="a hub dataset id (default: none)")
    data.add_argument("--dataset-config", default="", help="its configuration (default: none)")
    data.add_argument("--split", default="test", help="its split (default: test)")
    data.add_argument("--data-format", required=True, choices=FORMATS, help="the records' format")
    data.add_argument(
        "--columns",
        action="append",
        help="field mapping FORMAT_FIELD=FILE_FIELD,... once for all files or once per file "
        "(default: none)",
    )
    data.add_argument(
        "--max-length", type=int, default=256, help="tokens per example (default: 256)"
    )
    data.add_argument(
        "--max-examples", type=int, default=0, help="use the first N (default: 0, all)"
    )
    data.add_argument(
        "--source-lang", default="", help="translation: source language code (default: none)"
    )
    data.add_argument(
        "--target-lang", default="", help="translation: target language code (default: none)"
    )
    gen = p.add_argument_group("generation options")
    gen.add_argument(
        "--generate",
        type=int,
        default=100,
        help="examples to generate for task metrics (default: 100; 0: loss only)",
    )
    gen.add_argument(
        "--max-new-tokens", type=int, default=64, help="generation length (default: 64)"
    )
    out = p.add_argument_group("output options")
    out.add_argument("--output", help="also write the metrics as JSON here (default: none)")
    out.add_argument(
        "--samples-file",
        help="JSONL of every generated sample (prompt, prediction, references) (default: "
        "eval_samples.jsonl next to --output, else in the current folder; '' for none)",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bars (default: off)")


def samples_path(args) -> str:
    if args.samples_file is not None:
        return args.samples_file
    folder = os.path.dirname(args.output) if args.output else ""
    return os.path.join(folder, "eval_samples.jsonl")


def run(args) -> int:
    from ...data.sources import all_sources, load_sources
    from ...data.tokenize import set_chat_template, tokenize_examples
    from ...models.load import check_model_path, load_pretrained
    from ...pipeline.evaluate import evaluate
    from ...pipeline.prepare import DataError
    from ..errors import check_writable, write_atomic

    for name in ("max_length", "max_new_tokens"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("max_examples", "generate"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
    check_model_path(args.model)
    samples_file = samples_path(args)
    for path in filter(None, (args.output, samples_file)):
        check_writable(path, "output file")
    if not args.data and not args.dataset_name:
        raise ValueError("no evaluation data: pass --data FILE [FILE ...] (or --dataset-name)")
    sources = all_sources(
        args.data, args.data_format, args.columns, args.dataset_name, args.dataset_config,
        args.split,
    )  # fmt: skip
    groups, problems = load_sources(
        sources,
        source_lang=args.source_lang or None,
        target_lang=args.target_lang or None,
    )
    if problems:
        raise DataError(problems, "evaluation data")
    examples = [x for g in groups for x in g]
    if args.max_examples:
        examples = examples[: args.max_examples]
    tok, model = load_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    set_chat_template(tok, args.chat_template)
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
        keep_samples=None,
    )
    samples = out.pop("samples", [])
    out["examples"] = len(rows)
    out["skipped_after_tokenisation"] = len(bad)
    for s in samples[:PREVIEW]:
        print(f"prompt:     {s['prompt'][:120]!r}")
        print(f"prediction: {s['prediction'][:120]!r}")
        print(f"reference:  {s['reference'][:120]!r}\n")
    if samples and samples_file:
        write_atomic(samples_file, "".join(json.dumps(s) + "\n" for s in samples))
        out["samples_file"] = samples_file
        print(f"{len(samples)} sample(s) in {samples_file}")
    text = json.dumps(out, indent=1)
    if args.output:
        write_atomic(args.output, text)
    print(text)  # last: the metrics are what stays on the screen
    return 0
