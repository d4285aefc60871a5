"""Examples -> token ids and labels: loss only on assistant tokens (every assistant turn).

The conversation is rendered with the tokenizer's chat template when it has one, else with
``DEFAULT_CHAT_TEMPLATE`` (``<|role|>\\ncontent</s>`` per turn). Each turn is tokenised as the
text the template adds for it, so the supervised span of every assistant turn is known exactly
(its content and end-of-turn tokens; the ``<|assistant|>`` header is not supervised).
"""

from __future__ import annotations

from ..score.loss import IGNORE_INDEX
from .formats import Example
from .io import Problem

DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


BUILTIN_TEMPLATES = {
    "default": DEFAULT_CHAT_TEMPLATE,
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "plain": (
        "{% for m in messages %}### {{ m['role'] | capitalize }}:\n{{ m['content'] }}"
        "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n\n{% endfor %}"
        "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
    ),
}


def ensure_chat_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def load_chat_template(spec: str) -> str:
    """The Jinja text of ``spec``: a built-in name or a file; a one-line error for a missing
    file or a template that does not compile (with its line).

    >>> load_chat_template("chatml").startswith("{% for m in messages %}<|im_start|>")
    True
    >>> load_chat_template("nope")
    Traceback (most recent call last):
    ...
    FileNotFoundError: --chat-template nope: neither a file nor a built-in (default, chatml, plain)
    """
    import os

    if spec in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[spec]
    if not os.path.isfile(spec):
        raise FileNotFoundError(
            f"--chat-template {spec}: neither a file nor a built-in "
            f"({', '.join(BUILTIN_TEMPLATES)})"
        )
    with open(spec, encoding="utf-8") as f:
        text = f.read()
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise ValueError(f"{spec}:{e.lineno}: not a valid Jinja template ({e.message})") from None
    if "messages" not in text:
        raise ValueError(f"{spec}: a chat template must loop over 'messages'")
    return text


def set_chat_template(tokenizer, spec: str = "") -> None:
    """Use ``spec`` (``--chat-template``) if given, else the tokenizer's own, else the default."""
    if spec:
        tokenizer.chat_template = load_chat_template(spec)
    ensure_chat_template(tokenizer)


def render(tokenizer, messages, add_generation_prompt=False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def prompt_text(tokenizer, example: Example) -> str:
    """The conversation up to (not including) the last assistant turn, with the assistant header:
    what ``generate`` and ``eval`` continue."""
    return render(tokenizer, example.messages[:-1], add_generation_prompt=True)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize_example(tokenizer, example: Example, max_length: int):
    """``{"input_ids", "attention_mask", "labels"}`` truncated to ``max_length`` (from the right),
    or a reason string if nothing supervised is left."""
    ids: list[int] = []
    labels: list[int] = []
    if tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE_INDEX)
    done = ""
    for i, m in enumerate(example.messages):
        if m["role"] == "assistant":
            header = render(tokenizer, example.messages[:i], add_generation_prompt=True)
            part = _ids(tokenizer, header[len(done) :])
            ids += part
            labels += [IGNORE_INDEX] * len(part)
            done = header
        full = render(tokenizer, example.messages[: i + 1])
        part = _ids(tokenizer, full[len(done) :])
        ids += part
        labels += part if m["role"] == "assistant" else [IGNORE_INDEX] * len(part)
        done = full
    ids, labels = ids[:max_length], labels[:max_length]
    if sum(1 for x in labels[1:] if x != IGNORE_INDEX) == 0:
        return f"nothing supervised left after truncation to {max_length} tokens"
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_examples(tokenizer, examples, max_length: int):
    """Tokenised rows of ``(example, where)`` pairs and the problems of those that fail."""
    ensure_chat_template(tokenizer)
    rows, problems, kept = [], [], []
    for ex, where in examples:
        out = tokenize_example(tokenizer, ex, max_length)
        if isinstance(out, str):
            problems.append(Problem(where, out))
        else:
            rows.append(out)
            kept.append((ex, where))
    return rows, problems, kept
