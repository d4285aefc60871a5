"""Task metrics: BLEU and chrF (sacrebleu) for translation, ROUGE-L (rouge-score) for dialogue,
exact match and token F1 for QA (SQuAD-style normalisation, hand-written: a few lines that no
maintained package exposes alone), and GSM8K's final-number accuracy.

>>> qa_scores(["The Eiffel Tower!"], [["eiffel tower"]])
{'exact_match': 1.0, 'token_f1': 1.0}
>>> final_number("so 3 + 4 = 7.\\n#### 7"), final_number("it is 1,234 apples")
('7', '1234')
"""

from __future__ import annotations

import re
import string
from collections import Counter


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def token_f1(pred: str, ref: str) -> float:
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r:
        return float(p == r)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def qa_scores(preds: list[str], refs: list[list[str]]) -> dict:
    em = [
        max(float(normalize_answer(p) == normalize_answer(r)) for r in rs)
        for p, rs in zip(preds, refs)
    ]
    f1 = [max(token_f1(p, r) for r in rs) for p, rs in zip(preds, refs)]
    n = max(len(preds), 1)
    return {"exact_match": sum(em) / n, "token_f1": sum(f1) / n}


def final_number(text: str) -> str | None:
    """The answer after ``####`` if present, else the last number in the text."""
    if "####" in text:
        text = text.split("####")[-1]
    nums = re.findall(r"-?\d[\d,]*\.?\d*", text)
    return nums[-1].replace(",", "").rstrip(".") if nums else None


def math_scores(preds: list[str], refs: list[list[str]]) -> dict:
    hits = [
        float(final_number(p) is not None and final_number(p) == final_number(rs[0]))
        for p, rs in zip(preds, refs)
    ]
    return {"final_answer_accuracy": sum(hits) / max(len(hits), 1)}


def translation_scores(preds: list[str], refs: list[list[str]]) -> dict:
    import sacrebleu

    streams = [[rs[0] for rs in refs]]
    return {
        "bleu": sacrebleu.corpus_bleu(preds, streams).score,
        "chrf": sacrebleu.corpus_chrf(preds, streams).score,
    }


def dialogue_scores(preds: list[str], refs: list[list[str]]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    vals = [max(scorer.score(r, p)["rougeL"].fmeasure for r in rs) for p, rs in zip(preds, refs)]
    return {"rougeL": sum(vals) / max(len(vals), 1)}


SCORERS = {
    "qa": qa_scores,
    "math": math_scores,
    "translation": translation_scores,
    "dialogue": dialogue_scores,
}
PRIMARY = {
    "qa": "token_f1",
    "math": "final_answer_accuracy",
    "translation": "chrf",
    "dialogue": "rougeL",
}


def task_scores(tasks: list[str], preds: list[str], refs: list[list[str]]) -> dict:
    """Scores per task found in ``tasks`` (one entry per example), keys ``<task>/<metric>``."""
    out = {}
    for task in sorted(set(tasks)):
        idx = [i for i, t in enumerate(tasks) if t == task]
        scores = SCORERS[task]([preds[i] for i in idx], [refs[i] for i in idx])
        out.update({f"{task}/{k}": round(v, 4) for k, v in scores.items()})
        out[f"{task}/n"] = len(idx)
    return out
