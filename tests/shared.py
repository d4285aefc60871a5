"""Small data and command lines shared by the CLI, pipeline, model and distributed tests."""

import json
import os

# The shared data folder beside the checkout (an option for users; the tests skip without it).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SLAPTUNE_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
STORIES = os.path.join(SHARED, "tinyllamas-stories260K")


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


def qa_records(n=48):
    return [{"question": f"What is {i} plus {i % 5}?", "answer": str(i + i % 5)} for i in range(n)]


TINY = [
    "--model",
    "llama-tiny",
    "--data-format",
    "qa",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--grad-accum",
    "2",
    "--eval-size",
    "8",
    "--eval-generate",
    "4",
    "--max-new-tokens",
    "4",
    "--tokenizer-vocab",
    "300",
    "--max-length",
    "64",
    "--no-progress",
    "--logging-steps",
    "2",
]
