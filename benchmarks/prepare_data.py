"""Turn the shared raw datasets into slaptune's standard formats, with fixed-seed splits.

    python benchmarks/prepare_data.py --data-root ../shared/data --out runs/data

Writes, per task, ``<task>/{train,val,test}.jsonl`` and ``splits.json`` (sizes, seed, source):

- ``rolebench`` (dialogue, ``messages``): RoleBench English role-specific questions
  (role-generalization/role_specific/test.jsonl), system prompt "You are <role>.", answer
  ``generated[0]``.
- ``topical_chat`` (multi-turn dialogue, ``messages``): Topical-Chat valid_freq/valid_rare;
  agent_1 is the user, agent_2 the assistant, cut after the 6th turn (every assistant turn is
  supervised).
- ``tatoeba`` (translation, ``translation``): deu, fra, spa, ita, por, nld -> English (the
  pretrained stories260K model knows English only).
- ``nq_open`` (QA, ``qa``): NQ-open dev; all gold answers are references.
- ``gsm8k`` (math QA, ``qa``): GSM8K train (train/val) and test.
- ``character_llm`` (multi-turn role-play, ``messages``; **CC BY-NC 4.0, research benchmarks
  only**): the Character-LLM interviews (9 characters, gpt-3.5 and Character-LLM-7B answers),
  system prompt "You are <character>.", the interviewer is the user, cut after the 6th turn.
  Split by interview (character, question id), so both models' versions of one interview land
  in the same split; test 150 and val 100 interviews' worth of dialogues.

``--tasks`` prepares a subset and merges its sizes into an existing ``splits.json`` (the other
tasks' files are left untouched). The split: each source is shuffled with
``random.Random(seed)`` and cut into test, val, train in that order (sizes are options).
Nothing from ../shared/data is committed; only this script.
"""

from __future__ import annotations

import argparse
import json
import os
import random

LANGS = ("deu", "fra", "spa", "ita", "por", "nld")
TASKS = ("rolebench", "topical_chat", "tatoeba", "nq_open", "gsm8k", "character_llm")


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rolebench(root):
    path = os.path.join(
        root, "rolebench", "rolebench-eng", "role-generalization", "role_specific", "test.jsonl"
    )
    return [
        {
            "messages": [
                {"role": "system", "content": f"You are {r['role']}."},
                {"role": "user", "content": r["question"]},
                {"role": "assistant", "content": r["generated"][0]},
            ],
            "task": "dialogue",
        }
        for r in jsonl(path)
        if r.get("generated")
    ]


def topical_chat(root, max_turns=6):
    out = []
    for name in ("valid_freq", "valid_rare"):
        with open(os.path.join(root, "topical-chat", "conversations", f"{name}.json")) as f:
            convs = json.load(f)
        for conv in convs.values():
            turns = [t for t in conv["content"] if t["message"].strip()][:max_turns]
            msgs = [
                {
                    "role": "user" if t["agent"] == "agent_1" else "assistant",
                    "content": t["message"],
                }
                for t in turns
            ]
            while msgs and msgs[-1]["role"] != "assistant":
                msgs.pop()
            if any(m["role"] == "assistant" for m in msgs) and msgs[0]["role"] == "user":
                out.append({"messages": msgs, "task": "dialogue"})
    return out


def tatoeba(root):
    out = []
    base = os.path.join(root, "tatoeba-laser", "data", "tatoeba", "v1")
    for lang in LANGS:
        with open(os.path.join(base, f"tatoeba.{lang}-eng.{lang}"), encoding="utf-8") as f:
            src = f.read().splitlines()
        with open(os.path.join(base, f"tatoeba.{lang}-eng.eng"), encoding="utf-8") as f:
            tgt = f.read().splitlines()
        out += [
            {"source": s, "target": t, "source_lang": lang, "target_lang": "eng"}
            for s, t in zip(src, tgt)
            if s.strip() and t.strip()
        ]
    return out


def nq_open(root):
    return [
        {"question": r["question"], "answer": r["answer"]}
        for r in jsonl(os.path.join(root, "nq-open", "nq_open", "NQ-open.dev.jsonl"))
    ]


def gsm8k(root):
    base = os.path.join(root, "gsm8k", "grade_school_math", "data")
    return jsonl(os.path.join(base, "train.jsonl")), jsonl(os.path.join(base, "test.jsonl"))


def character_llm(root, max_turns=6):
    """Interviews as ``messages`` records, each tagged with its interview for a grouped split."""
    base = os.path.join(root, "character-llm", "data", "gen_results", "interview_turns")
    out = []
    for folder in sorted(os.listdir(base)):
        for name in sorted(os.listdir(os.path.join(base, folder))):
            for r in jsonl(os.path.join(base, folder, name)):
                msgs = [{"role": "system", "content": f"You are {r['character']}."}]
                for turn in r["content"][:max_turns]:
                    text = " ".join(
                        (
                            p["content"]
                            if p.get("action") in (None, "", "(speaking)")
                            else f"{p['action']} {p['content']}"
                        ).strip()
                        for p in turn["turn_content"]
                    )
                    role = "assistant" if turn["turn_role"] == "character" else "user"
                    msgs.append({"role": role, "content": text})
                while msgs and msgs[-1]["role"] != "assistant":
                    msgs.pop()
                if len(msgs) > 2:
                    out.append(
                        {
                            "messages": msgs,
                            "task": "dialogue",
                            "interview": f"{r['character']}/{r['qid']}",
                        }
                    )
    return out


def grouped_split(records, seed, n_test, n_val, key):
    """Shuffle groups (not records) with ``seed``; test and val take whole groups."""
    groups = sorted({r[key] for r in records})
    random.Random(seed).shuffle(groups)
    test_g, val_g = set(groups[:n_test]), set(groups[n_test : n_test + n_val])
    train = [r for r in records if r[key] not in test_g | val_g]
    return train, [r for r in records if r[key] in val_g], [r for r in records if r[key] in test_g]


def split(records, seed, n_test, n_val, n_train):
    records = list(records)
    random.Random(seed).shuffle(records)
    test, val = records[:n_test], records[n_test : n_test + n_val]
    train = records[n_test + n_val :][:n_train] if n_train else records[n_test + n_val :]
    return train, val, test


def write(folder, name, records):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.jsonl"), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data"))
    p.add_argument("--out", default="runs/data")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-train", type=int, default=0, help="cap per task (0: all)")
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {TASKS}")
    a = p.parse_args()
    tasks = a.tasks.split(",")
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    loaders = {
        "rolebench": rolebench,
        "topical_chat": topical_chat,
        "tatoeba": tatoeba,
        "nq_open": nq_open,
    }
    manifest_path = os.path.join(a.out, "splits.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("seed", a.seed) != a.seed:
            p.error(f"{manifest_path} was written with seed {manifest['seed']}, not {a.seed}")
    for task in tasks:
        if task in loaders:
            train, val, test = split(
                loaders[task](a.data_root), a.seed, a.n_test, a.n_val, a.n_train
            )
        elif task == "gsm8k":
            g_train, g_test = gsm8k(a.data_root)
            train, val, _ = split(g_train, a.seed, 0, a.n_val, a.n_train)
            test = split(g_test, a.seed, a.n_test, 0, 0)[2]
        else:  # character_llm: 450 interviews x 2 answering models
            train, val, test = grouped_split(
                character_llm(a.data_root), a.seed, a.n_test // 4, a.n_val // 4, "interview"
            )
            train = train[: a.n_train] if a.n_train else train
        for name, rs in (("train", train), ("val", val), ("test", test)):
            write(os.path.join(a.out, task), name, rs)
        manifest[task] = {"train": len(train), "val": len(val), "test": len(test)}
    manifest["seed"] = a.seed
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
