"""``slaptune generate``: a quick look at a model's continuation of a prompt or a chat turn."""

from __future__ import annotations


def add_parser(sub, name):
    p = sub.add_parser(name, help="continue a prompt (or answer a chat message)")
    p.add_argument("model", help="a model folder")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="raw text to continue (may be empty)")
    what.add_argument("--chat", help="a user message, wrapped in the chat template")
    p.add_argument("--system", help="system prompt for --chat")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--greedy", action="store_true", help="greedy decoding (default: sampling)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    import torch

    from ...data.tokenize import ensure_chat_template, render
    from ...models.load import load_pretrained
    from ...pipeline.evaluate import generate

    if args.temperature <= 0:
        raise ValueError("--temperature must be > 0 (use --greedy for deterministic output)")
    torch.manual_seed(args.seed)
    tok, model = load_pretrained(args.model)
    prompt = args.prompt
    if args.chat is not None:
        ensure_chat_template(tok)
        msgs = [{"role": "system", "content": args.system}] if args.system else []
        prompt = render(tok, msgs + [{"role": "user", "content": args.chat}], True)
    out = generate(
        model,
        tok,
        [prompt],
        args.max_new_tokens,
        batch_size=1,
        greedy=args.greedy,
        temperature=args.temperature,
    )[0]
    print(out)
    return 0
