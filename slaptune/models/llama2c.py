"""Import a llama2.c checkpoint (legacy version-0 ``.bin``) and its ``tok*.bin`` tokenizer as a
standard Hugging Face ``LlamaForCausalLM`` folder with a ``tokenizers`` tokenizer.

Written by hand because no maintained library reads llama2.c's binary formats. Two details
matter: llama2.c rotates interleaved pairs ``(2i, 2i+1)`` while HF Llama rotates halves, so the
rows of ``wq`` and ``wk`` are permuted per head (as in HF's ``convert_llama_weights_to_hf.py``);
and the tokenizer is sentencepiece-style BPE whose merge priority is the score of the merged
piece, with byte fallback (ids 3..258) and a dummy leading space.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import torch

from .load import writing_folder

HEADER = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")


def _check_file(path: str, what: str) -> None:
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give the llama2.c {what} file itself")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")


def check_header(path: str, h: dict) -> None:
    """One-line ``ValueError`` for a header no llama2.c model has (a zero head count would
    otherwise divide by zero, a negative size reshape garbage)."""
    bad = [k for k in HEADER if h[k] <= 0]
    if bad:
        raise ValueError(
            f"{path}: header field(s) {', '.join(bad)} not positive in {h}; "
            "not a llama2.c version-0 checkpoint?"
        )
    d, nh, nkv = h["dim"], h["n_heads"], h["n_kv_heads"]
    if d % nh or (d // nh) % 2 or nh % nkv:
        raise ValueError(
            f"{path}: dim {d}, n_heads {nh}, n_kv_heads {nkv} do not fit (dim must split into "
            "n_heads heads of even size, n_heads into groups of n_kv_heads); damaged header?"
        )


def read_checkpoint(path: str):
    """``(header dict, {name: float32 array})`` of a llama2.c version-0 checkpoint."""
    _check_file(path, "checkpoint")
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 28:
        raise ValueError(f"{path}: too short for a llama2.c checkpoint header")
    h = dict(zip(HEADER, struct.unpack("7i", raw[:28])))
    shared = h["vocab_size"] > 0
    h["vocab_size"] = abs(h["vocab_size"])
    check_header(path, h)
    d, hd, L, nh, nkv, v = (
        h[k] for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size")
    )
    head = d // nh
    shapes = [
        ("tok_embeddings", (v, d)),
        ("rms_att", (L, d)),
        ("wq", (L, nh * head, d)),
        ("wk", (L, nkv * head, d)),
        ("wv", (L, nkv * head, d)),
        ("wo", (L, d, nh * head)),
        ("rms_ffn", (L, d)),
        ("w1", (L, hd, d)),
        ("w2", (L, d, hd)),
        ("w3", (L, hd, d)),
        ("rms_final", (d,)),
        ("freq_cis_real", (h["seq_len"], head // 2)),
        ("freq_cis_imag", (h["seq_len"], head // 2)),
    ]
    data = np.frombuffer(raw, dtype=np.float32, offset=28)
    out, pos = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        if pos + n > data.size:
            raise ValueError(
                f"{path}: file ends inside {name}; not a llama2.c v0 checkpoint with header {h}"
            )
        out[name] = data[pos : pos + n].reshape(shape)
        pos += n
    if not shared:
        n = v * d
        if pos + n > data.size:
            raise ValueError(f"{path}: missing the unshared classifier weights")
        out["wcls"] = data[pos : pos + n].reshape(v, d)
    h["shared_classifier"] = shared
    return h, out


def _permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Interleaved-pair rotary layout -> HF's rotate-half layout, per head."""
    rows, cols = w.shape
    return w.view(heads, rows // heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def build_model(header: dict, weights: dict):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=header["vocab_size"],
        hidden_size=header["dim"],
        intermediate_size=header["hidden_dim"],
        num_hidden_layers=header["n_layers"],
        num_attention_heads=header["n_heads"],
        num_key_value_heads=header["n_kv_heads"],
        max_position_embeddings=header["seq_len"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=header["shared_classifier"],
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    t = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    sd = {
        "model.embed_tokens.weight": t["tok_embeddings"],
        "model.norm.weight": t["rms_final"],
        "lm_head.weight": t.get("wcls", t["tok_embeddings"]),
    }
    for i in range(header["n_layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = t["rms_att"][i]
        sd[p + "post_attention_layernorm.weight"] = t["rms_ffn"][i]
        sd[p + "self_attn.q_proj.weight"] = _permute(t["wq"][i], header["n_heads"])
        sd[p + "self_attn.k_proj.weight"] = _permute(t["wk"][i], header["n_kv_heads"])
        sd[p + "self_attn.v_proj.weight"] = t["wv"][i]
        sd[p + "self_attn.o_proj.weight"] = t["wo"][i]
        sd[p + "mlp.gate_proj.weight"] = t["w1"][i]
        sd[p + "mlp.down_proj.weight"] = t["w2"][i]
        sd[p + "mlp.up_proj.weight"] = t["w3"][i]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ValueError(f"weight mismatch: missing {missing}, unexpected {unexpected}")
    return model


def read_tokenizer(path: str) -> tuple[list[str], list[float]]:
    """``(pieces, scores)`` of a llama2.c ``tok*.bin``: an int max length, then per token a float
    score, an int byte count and the bytes."""
    _check_file(path, "tokenizer")
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for a llama2.c tokenizer")
    pieces, scores, pos = [], [], 4
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise ValueError(f"{path}: ends inside the header of token {len(pieces)}; truncated?")
        score, n = struct.unpack_from("fi", raw, pos)
        pos += 8
        if n < 0 or pos + n > len(raw):
            raise ValueError(
                f"{path}: token {len(pieces)} claims {n} bytes but the file ends; truncated?"
            )
        pieces.append(raw[pos : pos + n].decode("utf-8", errors="replace"))
        scores.append(score)
        pos += n
    return pieces, scores


def build_tokenizer(pieces: list[str], scores: list[float]):
    """A fast tokenizer equivalent to llama2.c's encoder, in the standard Llama layout."""
    from tokenizers import Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    # llama2.c stores the specials as "<unk>", "\n<s>\n", "\n</s>\n"; use the plain names.
    sp = ["<unk>", "<s>", "</s>"] + [
        p.replace(" ", "\u2581") if i > 258 else p for i, p in enumerate(pieces) if i > 2
    ]
    vocab = {p: i for i, p in enumerate(sp)}
    merges = []
    for piece, score in zip(sp[259:], scores[259:]):
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((score, vocab[a], vocab[b], (a, b)))
    merges = [m[3] for m in sorted(merges, key=lambda m: (-m[0], m[1], m[2]))]
    tok = Tokenizer(
        BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("\u2581", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
    )


def convert(checkpoint: str, tokenizer: str, out_dir: str) -> str:
    """Write ``out_dir`` (model as safetensors + tokenizer); written to a temporary folder first
    and renamed, so a failure leaves nothing half-written."""
    _check_file(checkpoint, "checkpoint")
    _check_file(tokenizer, "tokenizer")
    header, weights = read_checkpoint(checkpoint)
    pieces, scores = read_tokenizer(tokenizer)
    if len(pieces) != header["vocab_size"]:
        raise ValueError(
            f"{tokenizer} has {len(pieces)} tokens but {checkpoint} expects {header['vocab_size']}"
        )
    with writing_folder(out_dir) as tmp:
        model = build_model(header, weights)
        tok = build_tokenizer(pieces, scores)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out_dir
