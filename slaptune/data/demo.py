"""The embedded demo dataset: several instruction tasks, generated in-process, with the
redundancy and noise of real instruction data so that pruning has something to find.

Tasks: arithmetic questions (qa, exact match), a toy language -> English translation
(translation, chrF/BLEU), word-order reversal (qa), and canned chit-chat (dialogue, ROUGE-L).
About a quarter of the training set are exact or near duplicates of a few popular prompts, and
a share of answers (``noise``, default 8%) is wrong, as in crowd-sourced data.

>>> train, test = demo_records(n_train=20, n_test=5, seed=0)
>>> sorted(train[0])
['completion', 'id', 'prompt', 'task']
"""

from __future__ import annotations

import random

NOUNS = {
    "kato": "cat",
    "hundo": "dog",
    "domo": "house",
    "arbo": "tree",
    "birdo": "bird",
    "libro": "book",
    "suno": "sun",
    "fiso": "fish",
    "akvo": "water",
    "pomo": "apple",
}
ADJECTIVES = {
    "ruga": "red",
    "granda": "big",
    "malgranda": "small",
    "verda": "green",
    "blua": "blue",
    "bela": "pretty",
    "nigra": "black",
    "blanka": "white",
}
VERBS = {"vidas": "sees", "amas": "loves", "havas": "has", "manĝas": "eats"}
WORDS = ["sun", "moon", "star", "river", "stone", "cloud", "wind", "leaf", "fire", "snow"]
CHAT = [
    ("Hello!", "Hello! How can I help you today?"),
    ("Thank you.", "You are welcome."),
    ("Who are you?", "I am a small assistant model."),
    ("Good night.", "Good night, sleep well!"),
]
NUMBER_WORDS = ["plus", "minus", "times"]


def _arithmetic(rng):
    a, b, op = rng.randint(0, 20), rng.randint(0, 9), rng.choice(NUMBER_WORDS)
    value = a + b if op == "plus" else a - b if op == "minus" else a * b
    return f"What is {a} {op} {b}?", str(value), "qa"


def _translation(rng):
    adj, noun = rng.choice(list(ADJECTIVES)), rng.choice(list(NOUNS))
    if rng.random() < 0.5:
        return (
            f"Translate to English: la {noun} {adj}",
            f"the {ADJECTIVES[adj]} {NOUNS[noun]}",
            "translation",
        )
    n2, verb = rng.choice(list(NOUNS)), rng.choice(list(VERBS))
    return (
        f"Translate to English: la {noun} {verb} la {n2}",
        f"the {NOUNS[noun]} {VERBS[verb]} the {NOUNS[n2]}",
        "translation",
    )


def _reverse(rng):
    words = rng.sample(WORDS, rng.randint(2, 4))
    return f"Reverse the words: {' '.join(words)}", " ".join(reversed(words)), "qa"


def _chat(rng):
    q, a = rng.choice(CHAT)
    return q, a, "dialogue"


GENERATORS = (_arithmetic, _translation, _reverse)


def demo_records(
    n_train: int = 1200,
    n_test: int = 150,
    seed: int = 0,
    noise: float = 0.08,
    duplicates: float = 0.25,
):
    """``(train, test)`` lists of prompt-completion records with ``task`` and ``id`` fields."""
    rng = random.Random(seed)

    def fresh():
        return rng.choice(GENERATORS)(rng)

    test_keys, test = set(), []
    while len(test) < n_test:
        prompt, answer, task = fresh()
        if prompt not in test_keys:
            test_keys.add(prompt)
            test.append({"prompt": prompt, "completion": answer, "task": task})
    popular = [_chat(rng) for _ in range(4)] + [fresh() for _ in range(6)]
    train = []
    while len(train) < n_train:
        if rng.random() < duplicates:
            prompt, answer, task = rng.choice(popular)
            if rng.random() < 0.3:  # near duplicate: same content, different surface
                prompt = prompt.rstrip("?.!") + rng.choice([" please", "?", "!", " ..."])
        else:
            prompt, answer, task = fresh()
            if prompt in test_keys:
                continue
        if rng.random() < noise:  # a wrong answer from another example
            answer = fresh()[1]
        train.append({"prompt": prompt, "completion": answer, "task": task})
    for i, r in enumerate(train):
        r["id"] = f"train-{i}"
    for i, r in enumerate(test):
        r["id"] = f"test-{i}"
    return train, test
