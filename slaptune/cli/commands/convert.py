"""``slaptune convert llama2c CHECKPOINT TOKENIZER OUT_DIR``."""

from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="import a model from another format")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    k = kinds.add_parser("llama2c", help="a llama2.c checkpoint (.bin) and tokenizer (tok*.bin)")
    k.add_argument("checkpoint")
    k.add_argument("tokenizer")
    k.add_argument("out_dir")


def run(args) -> int:
    from ...models.llama2c import convert

    out = convert(args.checkpoint, args.tokenizer, args.out_dir)
    print(f"wrote a LlamaForCausalLM folder to {out}")
    return 0
