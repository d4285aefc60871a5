"""Small causal LMs built from a config, and an offline byte-level BPE tokenizer.

Presets are named ``<architecture>-<size>``: Llama, GLM (the paper used ChatGLM), GPT-2 (tied
embeddings) and Qwen2. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..data.tokenize import ensure_chat_template

SIZES = {  # hidden, layers, intermediate, heads
    "tiny": (32, 2, 64, 2),
    "1m": (64, 2, 256, 4),
    "5m": (192, 4, 768, 6),
    "20m": (384, 6, 1536, 6),
}
ARCHITECTURES = ("llama", "glm", "gpt2", "qwen2")
PRESETS = tuple(f"{a}-{s}" for a in ARCHITECTURES for s in SIZES)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]


def build_config(preset: str, vocab_size: int, max_positions: int = 1024):
    """The ``transformers`` config of a preset, for a tokenizer of ``vocab_size`` tokens."""
    import transformers as tf

    arch, _, size = preset.partition("-")
    if arch not in ARCHITECTURES or size not in SIZES:
        raise ValueError(f"unknown model preset {preset!r}; valid: {', '.join(PRESETS)}")
    hidden, layers, inter, heads = SIZES[size]
    common = {"vocab_size": vocab_size, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    if arch == "gpt2":
        return tf.GPT2Config(
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_inner=inter,
            n_positions=max_positions,
            tie_word_embeddings=True,
            **common,
        )
    cls = {"llama": tf.LlamaConfig, "glm": tf.GlmConfig, "qwen2": tf.Qwen2Config}[arch]
    extra = {"head_dim": hidden // heads} if arch == "glm" else {}
    return cls(
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        **extra,
        **common,
    )


def build_model(preset: str, vocab_size: int, seed: int = 0, max_positions: int = 1024):
    """A freshly initialised causal LM of the preset (deterministic for a seed)."""
    import torch
    import transformers as tf

    config = build_config(preset, vocab_size, max_positions)
    torch.manual_seed(seed)
    return tf.AutoModelForCausalLM.from_config(config)


def build_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained in-process on ``texts`` (bytes only if None), with
    ``<pad> <s> </s> <unk>`` and a default chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    size = vocab_size if texts is not None else len(alphabet) + len(SPECIAL_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) if texts is not None else [""], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    ensure_chat_template(fast)
    return fast
