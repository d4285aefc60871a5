import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def byte_tokenizer():
    from slaptune.models.presets import build_tokenizer

    return build_tokenizer()


@pytest.fixture
def tiny_model():
    from slaptune.models.presets import build_model

    def make(preset="llama-tiny", vocab_size=64, seed=0):
        return build_model(preset, vocab_size, seed=seed).eval()

    return make


def prompt_completion_batch(b=6, t=12, vocab=64, seed=0):
    """Random token rows whose first third is a prompt (label -100) and last rows have padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (b, t), generator=g)
    labels = ids.clone()
    labels[:, : t // 3] = -100
    labels[-1, -3:] = -100
    return ids, labels
