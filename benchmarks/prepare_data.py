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

Controlled-redundancy pools (``--pools rolebench,nq_open --model runs/models/stories260K``):
training pools of ``--pool-size`` examples built from a clean task's train split, in which a
pruner has something to drop, written as ``<task>_<pool>/train.jsonl`` (quality is always
measured on the clean task's val/test files). Each record carries ``pool``: its role.

- ``filler25`` / ``filler50``: 25% / 50% already-known filler: "Tell me a story about <word>."
  answered by a story the pretrained stories260K model itself samples (seeded, temperature 0.8),
  so the base model already predicts these answers well; ``pool.json`` has the base model's
  loss on filler vs clean rows.
- ``dup50``: half the pool is copies: of 50% unique examples, half are repeated verbatim, half
  with a reworded prompt (fixed templates such as "Question: ...") and the same answer.
- ``noise10`` / ``noise20``: answers swapped (a derangement) among 10% / 20% of the examples.

``--lengths --model M`` writes ``lengths.json``: per task, token-length quantiles of whole
examples with the model's tokenizer, and ``whole95``, the smallest multiple of 32 at which
>= 95% of examples fit whole (capped at the model's context; ``fits`` is the share then).

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


WORDS = (
    "a dog",
    "a cat",
    "a ball",
    "the park",
    "a tree",
    "a bird",
    "a boat",
    "a cake",
    "the sun",
    "a fish",
    "a toy car",
    "the rain",
    "a flower",
    "a bear",
    "a frog",
    "a kite",
    "the sea",
    "a box",
    "a hat",
    "a bunny",
    "a train",
    "a star",
    "a garden",
    "a duck",
    "the moon",
)
OPENINGS = ("Once upon a time, there was", "One day,", "There was once", "Lily and Tom found")
REWORD = (
    "Question: {q}",
    "Please answer this: {q}",
    "{q} Thanks!",
    "I was wondering: {q}",
    "Could you tell me? {q}",
    "{q} Please reply.",
)
POOLS = ("filler25", "filler50", "dup50", "noise10", "noise20")


def _prompt_of(r: dict) -> str:
    return r["question"] if "question" in r else r["messages"][-2]["content"]


def _with_prompt(r: dict, text: str) -> dict:
    r = json.loads(json.dumps(r))
    if "question" in r:
        r["question"] = text
    else:
        r["messages"][-2]["content"] = text
    return r


def _answer_of(r: dict):
    return r["answer"] if "question" in r else r["messages"][-1]["content"]


def _with_answer(r: dict, answer) -> dict:
    r = json.loads(json.dumps(r))
    if "question" in r:
        r["answer"] = answer
    else:
        r["messages"][-1]["content"] = answer
    return r


def stories(model_dir: str, n: int, seed: int, max_new_tokens: int = 96) -> list[tuple[str, str]]:
    """``n`` (prompt, story) pairs sampled from the pretrained story model (seeded)."""
    import torch

    from slaptune.models.load import load_pretrained
    from slaptune.pipeline.evaluate import generate

    rng = random.Random(seed)
    tok, model = load_pretrained(model_dir)
    torch.manual_seed(seed)
    picks = [(rng.choice(WORDS), rng.choice(OPENINGS)) for _ in range(n)]
    starts = [f"{o} {w}" for w, o in picks]
    outs = generate(
        model, tok, starts, max_new_tokens, batch_size=64, greedy=False, temperature=0.8
    )
    pairs = []
    for (word, _), start, cont in zip(picks, starts, outs):
        text = f"{start} {cont}".strip()
        cut = text.rfind(".")  # end on a whole sentence
        pairs.append((f"Tell me a story about {word}.", text[: cut + 1] if cut > 0 else text))
    return pairs


def filler_record(like: dict, prompt: str, story: str) -> dict:
    if "question" in like:
        return {"question": prompt, "answer": story, "task": "qa", "pool": "filler"}
    msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": story}]
    return {"messages": msgs, "task": "dialogue", "pool": "filler"}


def build_pool(kind: str, clean: list[dict], size: int, seed: int, filler=None) -> list[dict]:
    """A pool of ``size`` records of ``kind`` (see the module doc) from ``clean``, shuffled."""
    rng = random.Random(f"{seed}-{kind}")
    base = [dict(r, pool="clean") for r in rng.sample(clean, min(size, len(clean)))]
    if kind.startswith("filler"):
        n_fill = round(size * int(kind[len("filler") :]) / 100)
        out = base[: size - n_fill] + [filler_record(clean[0], p, s) for p, s in filler[:n_fill]]
    elif kind == "dup50":
        unique = base[: size // 2]
        copies = [rng.choice(unique) for _ in range(size - len(unique))]
        half = len(copies) // 2
        out = unique + [dict(r, pool="duplicate") for r in copies[:half]]
        out += [
            dict(_with_prompt(r, rng.choice(REWORD).format(q=_prompt_of(r))), pool="reworded")
            for r in copies[half:]
        ]
    elif kind.startswith("noise"):
        out = list(base)
        idx = rng.sample(range(len(out)), round(len(out) * int(kind[len("noise") :]) / 100))
        answers = [_answer_of(out[i]) for i in idx]
        for j, i in enumerate(idx):  # rotate by one: nobody keeps their own answer
            out[i] = dict(_with_answer(out[i], answers[(j + 1) % len(idx)]), pool="noisy")
    else:
        raise ValueError(f"unknown pool {kind!r}; choose from {POOLS}")
    rng.shuffle(out)
    return out


def base_losses(model_dir: str, records: list[dict], data_format: str, per_role: int = 64) -> dict:
    """Mean per-token loss of the base model on each pool role (what "already known" means),
    on up to ``per_role`` records of each role (the first ones: the pool is shuffled)."""
    from slaptune.data.formats import to_example
    from slaptune.data.tokenize import tokenize_examples
    from slaptune.models.load import load_pretrained
    from slaptune.pipeline.eval_curve import pooled_loss
    from slaptune.pipeline.evaluate import per_example_losses

    tok, model = load_pretrained(model_dir)
    seen: dict[str, int] = {}
    examples = []
    for i, r in enumerate(records):
        seen[r["pool"]] = seen.get(r["pool"], 0) + 1
        if seen[r["pool"]] <= per_role:
            examples.append((to_example(r, data_format), i))
    rows, _, kept = tokenize_examples(tok, examples, 512)
    sums, counts = per_example_losses(model, rows, tok.pad_token_id or 0)
    roles = [records[i]["pool"] for _, i in kept]
    return {
        role: pooled_loss(sums, counts, [j for j, r in enumerate(roles) if r == role])
        for role in sorted(set(roles))
    }


def whole_lengths(model_dir: str, records: list[dict], data_format: str, **fmt) -> dict:
    """Token-length quantiles of whole examples and ``whole95`` (see the module doc)."""
    from slaptune.data.formats import to_example
    from slaptune.data.tokenize import tokenize_examples
    from slaptune.models.load import load_pretrained

    tok, model = load_pretrained(model_dir)
    cap = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    examples = [(to_example(r, data_format, **fmt), i) for i, r in enumerate(records)]
    rows, _, _ = tokenize_examples(tok, examples, 10**6)
    lengths = sorted(len(r["input_ids"]) for r in rows)
    q = {f"p{p}": lengths[min(len(lengths) - 1, int(p / 100 * len(lengths)))] for p in (50, 95, 99)}
    need = -(-q["p95"] // 32) * 32
    pick = min(need, cap)
    return {
        **q,
        "max": lengths[-1],
        "whole95": pick,
        "fits": round(sum(n <= pick for n in lengths) / len(lengths), 4),
        "context": cap,
        "examples": len(lengths),
    }


FORMATS = {
    "rolebench": ("messages", {}),
    "topical_chat": ("messages", {}),
    "tatoeba": ("translation", {}),
    "nq_open": ("qa", {}),
    "gsm8k": ("qa", {}),
    "character_llm": ("messages", {}),
}


def write_pools(a, tasks: list[str]) -> dict:
    manifest = {}
    for task in tasks:
        clean = [json.loads(x) for x in open(os.path.join(a.out, task, "train.jsonl"))]
        fmt = FORMATS[task][0]
        if fmt not in ("messages", "qa"):
            raise SystemExit(f"pools need a messages or qa task, not {task} ({fmt})")
        filler = stories(a.model, a.pool_size // 2, a.seed)
        for kind in POOLS:
            pool = build_pool(kind, clean, a.pool_size, a.seed, filler)
            write(os.path.join(a.out, f"{task}_{kind}"), "train", pool)
            roles = {}
            for r in pool:
                roles[r["pool"]] = roles.get(r["pool"], 0) + 1
            info = {"base_task": task, "pool": kind, "seed": a.seed, "size": len(pool)}
            info["roles"] = roles
            info["base_model_loss_by_role"] = base_losses(a.model, pool, fmt)
            with open(os.path.join(a.out, f"{task}_{kind}", "pool.json"), "w") as f:
                json.dump(info, f, indent=1)
            manifest[f"{task}_{kind}"] = info
    return manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data"))
    p.add_argument("--out", default="runs/data")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-train", type=int, default=0, help="cap per task (0: all)")
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {TASKS}")
    p.add_argument("--pools", default="", help="tasks to build redundancy pools from (prepared)")
    p.add_argument("--pool-size", type=int, default=800)
    p.add_argument("--lengths", action="store_true", help="write lengths.json (needs --model)")
    p.add_argument("--model", default="", help="converted stories260K folder (pools, lengths)")
    a = p.parse_args()
    if (a.pools or a.lengths) and not a.model:
        p.error("--pools and --lengths need --model (a converted stories260K folder)")
    if a.pools or a.lengths:
        import torch

        torch.set_num_threads(1)  # a 260K model: one thread is as fast, and shares the cores
        extra = {}
        if a.pools:
            extra["pools"] = write_pools(a, a.pools.split(","))
        if a.lengths:
            extra["lengths"] = measure_lengths(a, [t for t in a.tasks.split(",") if t])
        print(json.dumps(extra, indent=1))
        return
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


def measure_lengths(a, tasks: list[str]) -> dict:
    """Per task, from its train split: see :func:`whole_lengths`; merged into lengths.json."""
    path = os.path.join(a.out, "lengths.json")
    out = json.load(open(path)) if os.path.exists(path) else {}
    for task in tasks:
        base = task.split("_filler")[0].split("_dup")[0].split("_noise")[0]
        fmt, opts = FORMATS[base]
        records = [json.loads(x) for x in open(os.path.join(a.out, task, "train.jsonl"))]
        out[task] = whole_lengths(a.model, records, fmt, **opts)
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(path + ".tmp", path)
    return out


if __name__ == "__main__":
    main()
