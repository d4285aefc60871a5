"""SLAP inside the Hugging Face ``Trainer``: ``SlapTrainer`` + ``SlapTrainingArguments``.

    python examples/hf_trainer.py                  # a tiny model built from a config, CPU
    python examples/hf_trainer.py --model PATH     # any local causal-LM folder

The selection settings are extra fields of the training arguments. Trainer pulls a whole
gradient-accumulation window (here 8 x 2 = 16 candidates), SLAP keeps ``keep_ratio`` of it, and
the step's gradient is the token-mean over the kept rows. ``scoring="reuse"`` scores each example
from its own last training forward (no extra forward): the first epoch trains on everything,
later epochs prune. Under a minute on 2 CPU cores (about 31 s of CPU time with the defaults).
"""

import argparse
import json
import random
import tempfile

import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq

from slaptune.integrations.hf import SlapTrainer, SlapTrainingArguments
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
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps (4 per epoch)")
    parser.add_argument("--output-dir", default=None, help="default: a new temporary folder")
    cli = parser.parse_args()
    output_dir = cli.output_dir or tempfile.mkdtemp(prefix="slaptune-hf-")

    data = instruction_data(64)  # 4 windows of 16 per epoch
    tokenizer, model = model_and_tokenizer(cli.model, data)

    # [readme-hf]
    # Rows: input_ids, attention_mask, labels (-100 on the prompt), see tokenize() above.
    ds = Dataset.from_list(data).map(
        lambda e: tokenize(tokenizer, e), remove_columns=["instruction", "response"]
    )
    # Pads input_ids with the pad token and labels with -100, to the longest row of the batch.
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    args = SlapTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # window = 16 candidates
        max_steps=cli.steps,
        learning_rate=3e-3,
        method="slap",
        keep_ratio=0.7,
        num_strata=5,
        scoring="reuse",
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        save_strategy="no",
        logging_steps=4,
    )
    trainer = SlapTrainer(
        model=model, args=args, train_dataset=ds, data_collator=collator, processing_class=tokenizer
    )
    trainer.train()  # resume_from_checkpoint=True resumes the selection too
    summary = trainer.slap_engine.ledger.summary()  # samples, tokens, FLOPs, time
    # [/readme-hf]

    print(f"kept {summary['samples_trained']} of {summary['samples_seen']} candidates")
    print(f"selection log: {output_dir}/selection.jsonl")
    print("compute: " + json.dumps(summary))


if __name__ == "__main__":
    main()
