"""Write small GGUF files the way llama.cpp's converter does, for the import tests.

A tiny Llama (random weights, seeded) with a byte-level BPE tokenizer in GGUF metadata
(``tokenizer.ggml.model = "gpt2"``, as SmolLM2's file has it), control tokens for a ChatML chat
template, and q/k rows permuted to llama.cpp's interleaved rotary layout, so an import that forgets
to undo the permutation gives different logits.
"""

from __future__ import annotations

import numpy as np
import torch

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]


def tiny_tokens() -> tuple[list[str], list[int], list[str]]:
    """``(tokens, token types, merges)``: specials, the 256 byte symbols, then merged pieces."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_syms = [bytes_to_unicode()[b] for b in range(256)]
    merged = ["Ġt", "he", "Ġthe", "in", "Ġa"]
    tokens = SPECIALS + byte_syms + merged
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))  # 3 control, 1 normal
    return tokens, types, MERGES


def tiny_llama(vocab: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # random norms too, so a swapped norm shows in the logits
        for n, p in model.named_parameters():
            if "norm" in n:
                p.uniform_(0.5, 1.5)
    return model


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """HF rotate-half rows -> llama.cpp's interleaved pairs (convert_hf_to_gguf.py's permute)."""
    rows = w.shape[0] // heads // 2
    return w.reshape(heads, 2, rows, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_tensors(model) -> dict[str, np.ndarray]:
    """GGUF names -> float32 arrays (torch layout: out x in)."""
    cfg = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {
        "token_embd.weight": sd["model.embed_tokens.weight"],
        "output_norm.weight": sd["model.norm.weight"],
    }
    if not cfg.tie_word_embeddings:
        out["output.weight"] = sd["lm_head.weight"]
    for i in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        out[b + "attn_norm.weight"] = sd[p + "input_layernorm.weight"]
        out[b + "ffn_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        out[b + "attn_q.weight"] = _permute(q, cfg.num_attention_heads)
        out[b + "attn_k.weight"] = _permute(k, cfg.num_key_value_heads)
        out[b + "attn_v.weight"] = sd[p + "self_attn.v_proj.weight"]
        out[b + "attn_output.weight"] = sd[p + "self_attn.o_proj.weight"]
        out[b + "ffn_gate.weight"] = sd[p + "mlp.gate_proj.weight"]
        out[b + "ffn_up.weight"] = sd[p + "mlp.up_proj.weight"]
        out[b + "ffn_down.weight"] = sd[p + "mlp.down_proj.weight"]
    return out


def write_tiny_gguf(path, *, arch: str = "llama", quant: str = "F32", seed: int = 0):
    """Write a tiny Llama GGUF to ``path``; returns the HF model it was made from.

    ``quant`` names the GGML type of the 2-D weight matrices (norms stay F32, as llama.cpp does).
    """
    import gguf

    tokens, types, merges = tiny_tokens()
    model = tiny_llama(len(tokens), seed)
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_rope_freq_base(cfg.rope_theta if hasattr(cfg, "rope_theta") else 10000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(CHATML)
    qtype = getattr(gguf.GGMLQuantizationType, quant)
    for name, arr in llama_tensors(model).items():
        if arr.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            data = gguf.quants.quantize(arr, qtype)
            w.add_tensor(name, data, raw_dtype=qtype)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model
