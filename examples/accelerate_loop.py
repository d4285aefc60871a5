"""SLAP in an Accelerate training loop: ``SlapSelector`` on the unwrapped model.

    python examples/accelerate_loop.py                          # one process, CPU or GPU
    accelerate launch --num_processes 2 examples/accelerate_loop.py   # several processes
    python examples/accelerate_loop.py --model PATH             # any local causal-LM folder

Pass the *unwrapped* model to ``SlapSelector`` (it scores with it) and the prepared one to
``selector.loss``. Under several processes selection is global: the candidates of all ranks are
scored and selected together, every rank gets an even share of the kept rows, and the loss is
normalised by the global kept-token count, so DDP's gradient averaging gives the token-mean over
all kept rows. Under a minute on 2 CPU cores (about 30 s of CPU time with the defaults).
"""

import argparse
import json
import random

import torch
from accelerate import Accelerator
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
    cli = parser.parse_args()

    # [readme-accelerate]
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    data = instruction_data(16 * cli.steps)  # one epoch of `steps` batches of 16
    tokenizer, model = model_and_tokenizer(cli.model, data)
    rows = [tokenize(tokenizer, d) for d in data]
    # Pads input_ids with the pad token and labels with -100, to the longest row of the batch.
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    per_rank = 16 // accelerator.num_processes  # 16 candidates per step over all ranks
    loader = DataLoader(rows, batch_size=per_rank, shuffle=True, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    selector = SlapSelector(
        accelerator.unwrap_model(model), optimizer, SelectionConfig(keep_ratio=0.7)
    )
    for step, batch in enumerate(loader):
        sub = selector.select(batch, step=step)  # this rank's share of the kept rows
        loss = selector.loss(model, sub)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
    summary = selector.ledger.summary()  # global counts: the same books on every rank
    # [/readme-accelerate]

    if accelerator.is_main_process:
        print(f"processes: {accelerator.num_processes}, last loss {loss.item():.3f}")
        print(f"kept {summary['samples_trained']} of {summary['samples_seen']} candidates")
        print("compute: " + json.dumps(summary))
    accelerator.end_training()


if __name__ == "__main__":
    main()
