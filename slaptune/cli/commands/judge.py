"""``slaptune judge``: win rate of model A's answers against model B's, judged pairwise by any
OpenAI-compatible chat endpoint, each pair in both orders (position bias cancels)."""

from __future__ import annotations

import json
import os

from ...files import write_atomic


def add_parser(sub, name):
    p = sub.add_parser(name, help="pairwise win rate of two models' answers, LLM-judged")
    p.add_argument("a", help="model A: generations JSONL (prompt, answer) or a model folder")
    p.add_argument("b", help="model B: generations JSONL (prompt, answer) or a model folder")
    p.add_argument(
        "--prompts", help="JSONL of {prompt} records, needed for model folders (default: none)"
    )
    p.add_argument("--judge-url", required=True, help="OpenAI-compatible base URL, e.g. .../v1")
    p.add_argument("--judge-model", required=True, help="the judge's model name at that URL")
    p.add_argument(
        "--api-key-env",
        help="name of the environment variable holding the API key (default: none, no key)",
    )
    p.add_argument("--output", required=True, help="summary JSON; raw verdicts go to *.raw.jsonl")
    p.add_argument(
        "--max-prompts", type=int, default=200, help="judge at most N prompts (default: 200)"
    )
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per judge request (default: 60)"
    )
    p.add_argument(
        "--retries", type=int, default=2, help="retries per request, 5xx or network (default: 2)"
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="generation length for model folders (default: 64)",
    )


def answers(path: str, prompts, max_new_tokens: int) -> dict[str, str]:
    from ...pipeline.judge import generate_answers, read_generations

    if os.path.isdir(path):
        if prompts is None:
            raise ValueError(f"{path} is a model folder: pass --prompts FILE to generate from")
        return generate_answers(path, prompts, max_new_tokens)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such generations file or model folder")
    return read_generations(path)


def run(args) -> int:
    from ...pipeline.judge import ChatJudge, judge_pairs, read_prompts

    if args.max_prompts < 1 or args.timeout <= 0 or args.retries < 0:
        raise ValueError("--max-prompts must be >= 1, --timeout > 0 and --retries >= 0")
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ValueError(f"--api-key-env {args.api_key_env}: that variable is not set")
    prompts = read_prompts(args.prompts)[: args.max_prompts] if args.prompts else None
    ans_a = answers(args.a, prompts, args.max_new_tokens)
    ans_b = answers(args.b, prompts, args.max_new_tokens)
    judge = ChatJudge(args.judge_url, args.judge_model, key, args.timeout, args.retries)
    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    raw = os.path.splitext(out)[0] + ".raw.jsonl"
    summary = judge_pairs(judge, ans_a, ans_b, raw, args.max_prompts)
    summary.update({"a": args.a, "b": args.b, "judge_model": args.judge_model})
    write_atomic(out, json.dumps(summary, indent=1))
    print(
        f"A wins {summary['wins_a']}, B wins {summary['wins_b']}, ties {summary['ties']} "
        f"(invalid {summary['invalid']}) of {summary['prompts']} prompts; win rate A "
        f"{summary['win_rate_a']} (ties half); raw verdicts: {raw}"
    )
    return 0
