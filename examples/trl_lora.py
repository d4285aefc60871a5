"""SLAP in TRL's ``SFTTrainer`` with a PEFT LoRA adapter: ``SlapSFTTrainer``, ``SlapSFTConfig``.

    python examples/trl_lora.py                  # a tiny model built from a config, CPU
    python examples/trl_lora.py --model PATH     # any local causal-LM folder

The data are prompt / completion pairs; TRL tokenizes them and its collator masks the prompt
(labels -100) and the padding, so the loss and SLAP's scores cover the completion only.
With LoRA the output layer is frozen and has no Adam state, so ``feature_source="lora"`` takes
the gradient features from the last LoRA module(s) instead.

CPU notes: ``SFTConfig`` defaults to ``bf16=True`` on recent TRL, which fails on a CPU without
bf16 support ("Your setup doesn't support bf16/gpu"); this script turns bf16 on only on a GPU
that supports it. Packing and padding-free batches are refused (a row must be one example).
Under a minute on 2 CPU cores (about 21 s of CPU time with the defaults).
"""

import argparse
import json
import random
import tempfile

import torch
from datasets import Dataset
from peft import LoraConfig

from slaptune.integrations.trl import SlapSFTConfig, SlapSFTTrainer
from slaptune.models.load import load_pretrained
from slaptune.models.presets import build_model, build_tokenizer


def prompt_completion_data(n: int, seed: int = 0) -> list[dict]:
    """Tiny instruction data in TRL's prompt-completion form."""
    rng = random.Random(seed)
    words = "red blue cat dog runs sleeps big small tree river stone wind".split()
    data = []
    for i in range(n):
        if i % 2:
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            data.append({"prompt": f"Add {a} and {b}.\nAnswer: ", "completion": str(a + b)})
        else:
            ws = rng.sample(words, rng.randint(2, 5))
            prompt = "Reverse: " + " ".join(ws) + "\nAnswer: "
            data.append({"prompt": prompt, "completion": " ".join(ws[::-1])})
    return data


def model_and_tokenizer(path: str | None, data: list[dict]):
    if path:  # a local folder with config.json, weights and tokenizer
        return load_pretrained(path)
    texts = [d["prompt"] + d["completion"] for d in data]
    tokenizer = build_tokenizer(texts, vocab_size=400)  # byte-level BPE trained on the data
    return tokenizer, build_model("llama-tiny", vocab_size=len(tokenizer), seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a local model folder (default: tiny)")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps")
    parser.add_argument("--output-dir", default=None, help="default: a new temporary folder")
    cli = parser.parse_args()
    output_dir = cli.output_dir or tempfile.mkdtemp(prefix="slaptune-trl-")

    data = prompt_completion_data(64)
    tokenizer, model = model_and_tokenizer(cli.model, data)
    ds = Dataset.from_list(data)

    # [readme-trl]
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    config = SlapSFTConfig(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # window = 16 candidates
        max_steps=cli.steps,
        learning_rate=1e-2,
        max_length=64,
        bf16=gpu_bf16,  # SFTConfig's bf16=True default fails on most CPUs
        use_cpu=not torch.cuda.is_available(),
        method="slap",
        keep_ratio=0.7,
        feature_source="lora",  # the frozen output layer has no Adam state to precondition
        report_to=[],
        save_strategy="no",
        logging_steps=4,
    )
    trainer = SlapSFTTrainer(
        model=model,
        args=config,
        train_dataset=ds,  # prompt / completion: TRL masks the prompt tokens (labels -100)
        processing_class=tokenizer,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"),
    )
    trainer.train()
    summary = trainer.slap_engine.ledger.summary()  # samples, tokens, FLOPs, time
    # [/readme-trl]

    with open(f"{output_dir}/selection.jsonl") as f:
        last = json.loads(f.readlines()[-1])  # one line per window
    print(f"gradient features at the last step: {last['features']}")
    print(f"trainable parameters: {summary['trainable_params']} of {summary['params']}")
    print(f"kept {summary['samples_trained']} of {summary['samples_seen']} candidates")
    print("compute: " + json.dumps(summary))


if __name__ == "__main__":
    main()
