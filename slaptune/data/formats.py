"""Dataset formats -> one normalised form: a list of chat messages, the assistant ones supervised.

Every format becomes ``Example(messages=[{"role", "content"}, ...], source=(file, line))``:

- ``alpaca``: ``instruction``, optional ``input``, ``output`` (a string, or a list: the first is
  trained on, all are references) and optional ``system`` -> system, user, assistant.
- ``messages``: ``messages`` (or ``conversations``) of ``{role, content}`` with roles system /
  user / assistant, or ShareGPT's ``{from, value}`` with system / human / gpt. Every assistant
  turn is supervised.
- ``prompt-completion``: ``prompt``, ``completion`` (and optional ``system``).
- ``translation``: ``source``, ``target`` and optional ``source_lang`` / ``target_lang`` (codes),
  or ``{"translation": {"de": ..., "en": ...}}`` with ``--source-lang/--target-lang``.
- ``qa``: ``question``, optional ``context``, ``answer`` (a string, or a list: the first is used
  for training, all count as references in ``eval``) and optional ``system``.

A record that does not fit raises ``RecordError`` with the reason; ``slaptune.data.io`` adds the
file and line. Text that cannot be encoded (a lone UTF-16 surrogate such as ``"\\ud800"`` in
JSON) is refused here, since the tokenizer would crash on it in the middle of ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("dialogue", "translation", "qa", "math")
FORMATS = ("alpaca", "messages", "prompt-completion", "translation", "qa")
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "human": "user",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
}
LANGUAGE_NAMES = {
    "eng": "English",
    "en": "English",
    "deu": "German",
    "de": "German",
    "fra": "French",
    "fr": "French",
    "spa": "Spanish",
    "es": "Spanish",
    "ita": "Italian",
    "it": "Italian",
    "por": "Portuguese",
    "pt": "Portuguese",
    "nld": "Dutch",
    "nl": "Dutch",
    "pol": "Polish",
    "pl": "Polish",
}


class RecordError(ValueError):
    """A record that cannot be used; the message says what is wrong and what to do."""


@dataclass
class Example:
    messages: list[dict]
    references: list[str] = field(default_factory=list)  # for eval: all acceptable answers
    task: str = "dialogue"  # dialogue | translation | qa | math
    id: str | None = None


def _text(record: dict, key: str, *, required: bool = True) -> str:
    if key not in record or record[key] is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(f"field {key!r} is empty")
    return value


def _answers(r: dict, key: str) -> list[str]:
    """A string, or a non-empty list of strings (the first is trained on, all are references)."""
    if r.get(key) is None:
        raise RecordError(f"missing field {key!r}")
    value = r[key]
    refs = value if isinstance(value, list) else [value]
    if not refs or not all(isinstance(a, str) and a.strip() for a in refs):
        raise RecordError(f"field {key!r} must be a non-empty string or list of strings")
    return refs


def _system(r: dict) -> list[dict]:
    system = _text(r, "system", required=False)
    return [{"role": "system", "content": system}] if system.strip() else []


def _alpaca(r: dict) -> Example:
    instruction, extra = _text(r, "instruction"), _text(r, "input", required=False)
    prompt = instruction + (f"\n\n{extra}" if extra.strip() else "")
    refs = _answers(r, "output")
    return Example(
        _system(r)
        + [{"role": "user", "content": prompt}, {"role": "assistant", "content": refs[0]}],
        list(refs),
    )


def _messages(r: dict) -> Example:
    turns = r.get("messages", r.get("conversations"))
    if not isinstance(turns, list) or not turns:
        raise RecordError("missing or empty field 'messages' (a list of {role, content})")
    msgs = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise RecordError(f"turn {i} is not an object")
        role = t.get("role", t.get("from"))
        content = t.get("content", t.get("value"))
        if not isinstance(role, str) or role not in ROLE_ALIASES:
            raise RecordError(
                f"turn {i} has unknown role {role!r}; valid: {', '.join(sorted(ROLE_ALIASES))}"
            )
        if not isinstance(content, str) or not content.strip():
            raise RecordError(f"turn {i} ({role}) has empty or missing content")
        msgs.append({"role": ROLE_ALIASES[role], "content": content})
    if msgs[-1]["role"] != "assistant":
        raise RecordError(
            "dialogue ends without an assistant turn (nothing to learn at its end); "
            "drop the trailing turn or the record"
        )
    if not any(m["role"] == "assistant" for m in msgs):
        raise RecordError("dialogue has no assistant turn")
    return Example(msgs, [msgs[-1]["content"]])


def _prompt_completion(r: dict) -> Example:
    completion = _text(r, "completion")
    return Example(
        _system(r)
        + [
            {"role": "user", "content": _text(r, "prompt")},
            {"role": "assistant", "content": completion},
        ],
        [completion],
    )


def _translation(r: dict, source_lang: str | None, target_lang: str | None) -> Example:
    if "translation" in r and isinstance(r["translation"], dict):
        pair = r["translation"]
        if not (source_lang and target_lang):
            raise RecordError("nested 'translation' records need --source-lang and --target-lang")
        src, tgt = _text(pair, source_lang), _text(pair, target_lang)
    else:
        src, tgt = _text(r, "source"), _text(r, "target")
        source_lang = r.get("source_lang", source_lang)
        target_lang = r.get("target_lang", target_lang)
    for key, code in (("source_lang", source_lang), ("target_lang", target_lang)):
        if code is not None and not isinstance(code, str):
            raise RecordError(
                f"{key} must be a language code string (e.g. 'de'), got {type(code).__name__}"
            )
    s_name = LANGUAGE_NAMES.get(source_lang or "", source_lang or "the source language")
    t_name = LANGUAGE_NAMES.get(target_lang or "", target_lang or "English")
    prompt = f"Translate from {s_name} to {t_name}:\n{src}"
    return Example(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": tgt}],
        [tgt],
        task="translation",
    )


def _qa(r: dict) -> Example:
    question, context = _text(r, "question"), _text(r, "context", required=False)
    refs = _answers(r, "answer")
    prompt = (f"{context}\n\n" if context.strip() else "") + question
    task = "math" if "####" in refs[0] else "qa"
    return Example(
        _system(r)
        + [{"role": "user", "content": prompt}, {"role": "assistant", "content": refs[0]}],
        list(refs),
        task=task,
    )


def to_example(
    record, data_format: str, *, source_lang: str | None = None, target_lang: str | None = None
) -> Example:
    """Normalise one record of ``data_format``; raises ``RecordError`` with the reason.

    >>> to_example({"question": "2+2?", "answer": ["4", "four"]}, "qa").references
    ['4', 'four']
    >>> to_example({"messages": [{"from": "human", "value": "hi"}]}, "messages")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    slaptune.data.formats.RecordError: dialogue ends without an assistant turn ...
    """
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a JSON object, got {type(record).__name__}")
    if data_format == "alpaca":
        ex = _alpaca(record)
    elif data_format == "messages":
        ex = _messages(record)
    elif data_format == "prompt-completion":
        ex = _prompt_completion(record)
    elif data_format == "translation":
        ex = _translation(record, source_lang, target_lang)
    elif data_format == "qa":
        ex = _qa(record)
    else:
        raise ValueError(f"unknown data format {data_format!r}; valid: {', '.join(FORMATS)}")
    _check_encodable(ex)
    if record.get("id") is not None:
        if isinstance(record["id"], (dict, list)):
            raise RecordError(
                f"field 'id' must be a string or number, got {type(record['id']).__name__}"
            )
        ex.id = str(record["id"])
    if record.get("task") is not None:  # optional: which metric family scores this example
        if not isinstance(record["task"], str) or record["task"] not in TASKS:
            raise RecordError(f"unknown task {record['task']!r}; valid: {', '.join(TASKS)}")
        ex.task = record["task"]
    return ex


def _check_encodable(ex: Example) -> None:
    for i, text in enumerate([m["content"] for m in ex.messages] + ex.references):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            where = f"turn {i}" if i < len(ex.messages) else "a reference"
            raise RecordError(
                f"{where} holds a lone surrogate {text[e.start]!r} at character {e.start} "
                "(a broken \\uXXXX escape); fix or remove the escape"
            ) from None
