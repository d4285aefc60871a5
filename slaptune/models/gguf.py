"""Import a GGUF file (llama.cpp's format, often quantized) as a plain Hugging Face model.

transformers reads GGUF itself (``from_pretrained(folder, gguf_file=NAME)``, dequantizing to the
requested dtype), but the model it returns carries a GGUF ``quantization_config`` and refuses
``save_pretrained``. So the weights are moved into a clean model of the same class, built from
the config without that attribute: the result trains, saves and reloads like any other folder.

Before the (slow) load, the file's metadata is read with the ``gguf`` package so that the usual
mistakes end in one line: not a GGUF file, truncated, an architecture transformers has no GGUF
mapping for, or a tensor type nobody can dequantize.

>>> check_gguf("no/such/model.gguf")
Traceback (most recent call last):
...
FileNotFoundError: no/such/model.gguf: no such file
"""

from __future__ import annotations

import copy
import os

from .load import ensure_pad_token, writing_folder

MAGIC = b"GGUF"


def is_gguf_file(path: str) -> bool:
    """True for an existing file named ``*.gguf`` (what ``--model`` accepts besides folders)."""
    return str(path).lower().endswith(".gguf") and os.path.isfile(path)


def _gguf():
    try:
        import gguf
    except ImportError:
        raise ValueError(
            "reading GGUF needs the gguf package: pip install 'slaptune[gguf]'"
        ) from None
    return gguf


def _supported_architectures() -> set[str] | None:
    """GGUF architecture names this transformers can map to a model, or None if it can't say."""
    names: set[str] = set()
    try:
        from transformers.integrations.gguf import GGUF_ARCHS

        names |= set(GGUF_ARCHS)
    except ImportError:
        pass
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        names |= set(GGUF_SUPPORTED_ARCHITECTURES)
    except ImportError:
        pass
    return names or None


def check_gguf(path: str) -> dict:
    """``{"architecture", "name", "types": {ggml type: tensor count}}`` of a readable GGUF file;
    a one-line ``ValueError`` (or ``FileNotFoundError``) for anything transformers can't load."""
    path = str(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give the .gguf file itself")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise ValueError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(path)
        arch = _field(reader, "general.architecture")
        name = _field(reader, "general.name") or os.path.basename(path)
        tensors = list(reader.tensors)
    except Exception as e:  # noqa: BLE001 - the reader raises anything on a damaged file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: unreadable GGUF ({msg}); truncated or damaged?") from None
    if not arch:
        raise ValueError(f"{path}: no general.architecture in the GGUF metadata")
    known = _supported_architectures()
    if known is not None and arch not in known:
        raise ValueError(
            f"{path}: architecture {arch!r} cannot be read by transformers' GGUF loader "
            f"(it reads: {', '.join(sorted(known))})"
        )
    types: dict[str, int] = {}
    for t in tensors:
        kind = t.tensor_type
        if kind.name not in types:
            _check_dequantizable(gguf, path, t)
        types[kind.name] = types.get(kind.name, 0) + 1
    if not tensors:
        raise ValueError(f"{path}: the GGUF file holds no tensors")
    return {"architecture": arch, "name": name, "types": types}


def _field(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8", errors="replace")


def _check_dequantizable(gguf, path: str, tensor) -> None:
    """Dequantize one block of ``tensor``: the ``gguf`` package (which transformers falls back
    on) raises NotImplementedError for types it has no decoder for (Q8_1, Q8_K, ...)."""
    kind = tensor.tensor_type
    _, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    raw = tensor.data.reshape(-1).view("uint8")[:block_bytes]
    try:
        gguf.quants.dequantize(raw, kind)
    except NotImplementedError:
        raise ValueError(
            f"{path}: tensor {tensor.name} is stored as {kind.name}, which cannot be dequantized "
            f"(gguf {getattr(gguf, '__version__', '')}); use a file quantized as F16, Q8_0, Q4_K..."
        ) from None


def load_gguf(path: str, *, dtype=None):
    """``(tokenizer, model)`` from a GGUF file: dequantized to ``dtype`` (float32 by default)
    into a plain model that saves normally, tokenizer and chat template from the metadata."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_gguf(path)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=dtype or torch.float32
        )
    except (ValueError, NotImplementedError, KeyError, OSError, TypeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path}: transformers cannot load this GGUF: {first}") from None
    model = clean_copy(loaded)
    del loaded
    ensure_pad_token(tok)
    return tok, model


def clean_copy(loaded):
    """The same weights in a fresh model of the same class whose config has no GGUF
    ``quantization_config`` (so ``save_pretrained`` works and nothing re-quantizes)."""
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = ""
    model = type(loaded)(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise ValueError(f"GGUF weights do not fit {type(loaded).__name__}: missing {missing}")
    if tied:
        model.tie_weights()
    model.generation_config = copy.deepcopy(loaded.generation_config)
    return model.eval()


def convert(path: str, out_dir: str, *, dtype=None) -> str:
    """Write ``out_dir``: safetensors weights, config, tokenizer and chat template. Written to a
    temporary sibling folder and renamed at the end, so a failure leaves nothing behind."""
    path, out_dir = str(path), str(out_dir).rstrip("/")
    check_gguf(path)
    with writing_folder(out_dir) as tmp:
        tok, model = load_gguf(path, dtype=dtype)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out_dir
