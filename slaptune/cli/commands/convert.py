"""``slaptune convert llama2c CHECKPOINT TOKENIZER OUT_DIR`` and ``slaptune convert gguf FILE
OUT_DIR``: import a model as a standard Hugging Face folder (safetensors + tokenizer)."""

from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="import a model from another format")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    k = kinds.add_parser("llama2c", help="a llama2.c checkpoint (.bin) and tokenizer (tok*.bin)")
    k.add_argument("checkpoint")
    k.add_argument("tokenizer")
    k.add_argument("out_dir")
    g = kinds.add_parser(
        "gguf",
        help="a GGUF file (llama.cpp; quantized or not): dequantized to float32 "
        "(needs pip install 'slaptune[gguf]')",
    )
    g.add_argument("file", help="the .gguf file")
    g.add_argument("out_dir")


def run(args) -> int:
    if args.kind == "gguf":
        from ...models.gguf import check_gguf, convert

        info = check_gguf(args.file)
        out = convert(args.file, args.out_dir)
        types = ", ".join(f"{k} x{n}" for k, n in sorted(info["types"].items()))
        print(f"wrote {info['name']} ({info['architecture']}; tensors {types}) to {out}")
        return 0
    from ...models.llama2c import convert

    out = convert(args.checkpoint, args.tokenizer, args.out_dir)
    print(f"wrote a LlamaForCausalLM folder to {out}")
    return 0
