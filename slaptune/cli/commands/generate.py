"""``slaptune generate``: a quick look at a model's continuation of a prompt or a chat turn."""

from __future__ import annotations

from ..options import add_online_flag


def add_parser(sub, name):
    p = sub.add_parser(name, help="continue a prompt (or answer a chat message)")
    model = p.add_argument_group("model options")
    model.add_argument("model", help="a model folder (or a hub id with --online)")
    model.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped in the model folder (default: off)",
    )
    model.add_argument(
        "--chat-template",
        default="",
        help="a Jinja file or built-in name for --chat (default: the model's own)",
    )
    add_online_flag(model)
    what = p.add_argument_group("input options").add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--prompt", help="raw text to continue, may be empty (default: none; this or --chat)"
    )
    what.add_argument(
        "--chat",
        help="a user message, wrapped in the chat template (default: none; this or --prompt)",
    )
    p.add_argument("--system", help="system prompt for --chat (default: none)")
    gen = p.add_argument_group("generation options")
    gen.add_argument(
        "--max-new-tokens", type=int, default=64, help="tokens to generate (default: 64)"
    )
    gen.add_argument(
        "--greedy", action="store_true", help="greedy decoding (default: off, sampling)"
    )
    gen.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature, > 0 (default: 0.8)"
    )
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")


def run(args) -> int:
    import math

    import torch

    from ...data.tokenize import render, set_chat_template
    from ...models.load import load_pretrained
    from ...pipeline.evaluate import generate

    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ValueError(
            "--temperature must be a finite number > 0 (use --greedy for deterministic output)"
        )
    if args.max_new_tokens < 1:
        raise ValueError("--max-new-tokens must be >= 1")
    for flag in ("prompt", "chat", "system"):  # undecodable argv bytes become surrogates
        try:
            (getattr(args, flag) or "").encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"--{flag} holds a character that is not valid text (UTF-8)") from None
    torch.manual_seed(args.seed)
    tok, model = load_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    prompt = args.prompt
    if args.chat is not None:
        set_chat_template(tok, args.chat_template)
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
