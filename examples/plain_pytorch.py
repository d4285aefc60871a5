"""SLAP in your own PyTorch loop: ``SlapSelector`` picks the rows of each batch to train on.

    python examples/plain_pytorch.py                  # a tiny model built from a config, CPU
    python examples/plain_pytorch.py --model PATH     # any local causal-LM folder

Each batch is one candidate window: the selector scores its rows with the current model, splits
them into loss strata, keeps ``keep_ratio`` of them (diverse inside each stratum), and
``selector.loss`` is the token-mean loss over the kept rows only. Under a minute on 2 CPU cores
(about 26 s of CPU time with the defaults).
"""

import argparse
import json
import random

import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForSeq2Seq

from slaptune import SelectionConfig
from slaptune.integrations.pytorch import SlapSelector
from slaptune.models.load import load_pretrained
from slaptune.models.presets import build_model, build_tokenizer


def instruction_data(n: int, seed: int = 0) -> list[dict]:
    """Tiny instruction / response pairs: reverse a few words, or add two numbers."""
    rng = random.Random(seed)
    words = "red blue cat dog runs sleeps big small tree river stone wind".split()
    data = []
    for i in range(n):
        if i % 2:
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            data.append({"instruction": f"Add {a} and {b}.", "response": str(a + b)})
        else:
            ws = rng.sample(words, rng.randint(2, 5))
            data.append({"instruction": "Reverse: " + " ".join(ws), "response": " ".join(ws[::-1])})
    return data


PROMPT = "### Instruction:\n{instruction}\n### Response:\n"


def tokenize(tokenizer, example: dict, max_length: int = 64) -> dict:
    """One training row. The loss is taken only on the response: prompt positions get label
    -100 (ignored by cross-entropy and by slaptune's scoring)."""
    prompt = tokenizer(PROMPT.format(**example), add_special_tokens=False)["input_ids"]
    answer = tokenizer(example["response"] + tokenizer.eos_token, add_special_tokens=False)
    answer = answer["input_ids"]
    input_ids = (prompt + answer)[:max_length]
    labels = ([-100] * len(prompt) + answer)[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def model_and_tokenizer(path: str | None, data: list[dict]):
    if path:  # a local folder with config.json, weights and tokenizer
        return load_pretrained(path)
    texts = [PROMPT.format(**d) + d["response"] for d in data]
    tokenizer = build_tokenizer(texts, vocab_size=400)  # byte-level BPE trained on the data
    return tokenizer, build_model("llama-tiny", vocab_size=len(tokenizer), seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a local model folder (default: tiny)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps (batches of 16)")
    parser.add_argument("--keep-ratio", type=float, default=0.7)
    cli = parser.parse_args()
    torch.manual_seed(0)

    data = instruction_data(16 * cli.steps)  # one epoch of `steps` batches of 16
    tokenizer, model = model_and_tokenizer(cli.model, data)
    # [readme-pytorch]
    rows = [tokenize(tokenizer, d) for d in data]  # input_ids, attention_mask, labels
    # Pads input_ids with the pad token and labels with -100, to the longest row of the batch.
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    loader = DataLoader(rows, batch_size=16, shuffle=True, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    selector = SlapSelector(model, optimizer, SelectionConfig(keep_ratio=cli.keep_ratio))
    for step, batch in enumerate(loader):  # input_ids, attention_mask, labels
        sub = selector.select(batch, step=step)  # score, stratify, select: the kept rows
        loss = selector.loss(model, sub)  # token-mean over kept rows (all ranks)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    summary = selector.ledger.summary()  # samples, tokens, FLOPs, time
    # [/readme-pytorch]

    print(f"loss on kept rows: first step {losses[0]:.3f}, last step {losses[-1]:.3f}")
    print(f"kept {summary['samples_trained']} of {summary['samples_seen']} candidates")
    print("compute: " + json.dumps(summary))


if __name__ == "__main__":
    main()
