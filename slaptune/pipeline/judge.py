"""Pairwise judged comparison of two models' answers (the paper's Fig. 9): win / tie / loss.

Any OpenAI-compatible chat endpoint judges (``POST <url>/chat/completions``). Every prompt is
judged twice, once with model A's answer first and once with model B's first, because judges
favour a position; a prompt counts as a win only when both orders agree, otherwise as a tie.
Every raw reply is saved with the order it was asked in.

>>> combine("A", "B")  # A first: A wins; B first: the second answer (A's) wins -> A both times
'a'
>>> combine("A", "A")  # each order preferred the first answer: position bias, no winner
'tie'
>>> parse_verdict("Verdict: B."), parse_verdict("tie"), parse_verdict("I like both")
('B', 'TIE', None)
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request

SYSTEM = (
    "You are a strict judge of answers to a user's request. Compare the two answers for "
    "helpfulness, correctness and fluency. Reply with exactly one word: A if answer A is "
    "better, B if answer B is better, TIE if they are equally good."
)
TEMPLATE = "[Request]\n{prompt}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n\n[End]"


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"TIE"`` from the judge's reply, else None: the whole reply, or its
    first capitalised verdict word (so that the article "a" is not read as a verdict)."""
    whole = text.strip().strip(".!").upper()
    if whole in ("A", "B", "TIE"):
        return whole
    m = re.search(r"\b(TIE|Tie|A|B)\b", text)
    return m.group(1).upper() if m else None


def combine(ab: str | None, ba: str | None) -> str:
    """One prompt's outcome for model a from the verdicts with a first (``ab``) and with b first
    (``ba``): ``"a"``, ``"b"``, ``"tie"`` (disagreeing orders or tie verdicts) or ``"invalid"``."""
    if ab is None or ba is None:
        return "invalid"
    first = {"A": "a", "B": "b", "TIE": "tie"}[ab]
    second = {"A": "b", "B": "a", "TIE": "tie"}[ba]
    return first if first == second else "tie"


class ChatJudge:
    """A bounded client: one request at a time, a timeout per request, a few retries."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        max_tokens: int = 8,
    ):
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.timeout, self.retries, self.max_tokens = timeout, retries, max_tokens

    def ask(self, user: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            self.endpoint, json.dumps(body).encode(), headers=headers, method="POST"
        )
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    reply = json.loads(resp.read().decode())
                return reply["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as e:
                if e.code < 500 or attempt == self.retries:
                    raise ValueError(
                        f"judge endpoint {self.endpoint} answered HTTP {e.code}; check "
                        "--judge-url, --judge-model and --api-key-env"
                    ) from None
            except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
                if attempt == self.retries:
                    reason = getattr(e, "reason", e)
                    raise ValueError(
                        f"judge endpoint {self.endpoint} unreachable ({reason}); start the "
                        "server or fix --judge-url"
                    ) from None
            except (KeyError, IndexError, TypeError, json.JSONDecodeError):
                raise ValueError(
                    f"judge endpoint {self.endpoint} did not answer like an OpenAI chat "
                    "completion (no choices[0].message.content)"
                ) from None
            time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")


def read_generations(path: str) -> dict[str, str]:
    """``{prompt: answer}`` from a JSONL file of ``{"prompt", "answer"}`` records."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[rec["prompt"]] = rec["answer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f'{path}:{n}: expected a JSON object with "prompt" and "answer"'
                ) from None
    if not out:
        raise ValueError(f"{path}: no generations in it")
    return out


def read_prompts(path: str) -> list[str]:
    """Prompts from a JSONL file (``{"prompt": ...}`` per line)."""
    prompts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                prompts.append(json.loads(line)["prompt"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f'{path}:{n}: expected a JSON object with "prompt"') from None
    if not prompts:
        raise ValueError(f"{path}: no prompts in it")
    return prompts


def generate_answers(model_dir: str, prompts: list[str], max_new_tokens: int) -> dict[str, str]:
    """Greedy answers of a model folder to user ``prompts`` (wrapped in its chat template)."""
    from ..data.tokenize import ensure_chat_template, render
    from ..models.load import load_pretrained
    from .evaluate import generate

    tok, model = load_pretrained(model_dir)
    ensure_chat_template(tok)
    texts = [render(tok, [{"role": "user", "content": p}], True) for p in prompts]
    return dict(zip(prompts, generate(model, tok, texts, max_new_tokens, greedy=True)))


def judge_pairs(
    judge: ChatJudge,
    answers_a: dict[str, str],
    answers_b: dict[str, str],
    raw_path: str,
    max_prompts: int = 200,
) -> dict:
    """Judge every shared prompt in both orders; raw verdicts to ``raw_path`` (JSONL, written
    as they come); returns the counts and model a's win rate (ties count half)."""
    prompts = [p for p in answers_a if p in answers_b][:max_prompts]
    if not prompts:
        raise ValueError("the two inputs share no prompt; judge answers to the same prompts")
    counts = {"a": 0, "b": 0, "tie": 0, "invalid": 0}
    first_preferred = judged = 0
    with open(raw_path + ".tmp", "w", encoding="utf-8") as raw:
        for i, prompt in enumerate(prompts):
            verdicts = []
            for order, (x, y) in (("ab", (answers_a, answers_b)), ("ba", (answers_b, answers_a))):
                reply = judge.ask(TEMPLATE.format(prompt=prompt, first=x[prompt], second=y[prompt]))
                verdict = parse_verdict(reply)
                verdicts.append(verdict)
                judged += verdict in ("A", "B")  # position bias: among decided verdicts
                first_preferred += verdict == "A"
                rec = {"index": i, "order": order, "prompt": prompt, "reply": reply}
                raw.write(json.dumps({**rec, "verdict": verdict}, ensure_ascii=False) + "\n")
            counts[combine(*verdicts)] += 1
    os.replace(raw_path + ".tmp", raw_path)
    valid = len(prompts) - counts["invalid"]
    return {
        "prompts": len(prompts),
        "wins_a": counts["a"],
        "wins_b": counts["b"],
        "ties": counts["tie"],
        "invalid": counts["invalid"],
        "win_rate_a": round((counts["a"] + 0.5 * counts["tie"]) / valid, 4) if valid else None,
        "first_position_preferred": round(first_preferred / judged, 4) if judged else None,
        "raw_verdicts": raw_path,
    }
