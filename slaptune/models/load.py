"""Load a saved causal LM and its tokenizer: one place for every command that reads a model.

Remote code is never run unless the caller asks for it (``trust_remote_code=True``): a model
folder is data, and transformers would otherwise ask on a terminal and run the folder's Python
on "y".

>>> load_pretrained("no/such/folder")
Traceback (most recent call last):
...
FileNotFoundError: no/such/folder: not a model folder (expected config.json and weights)
"""

from __future__ import annotations

import os


def check_model_path(path: str) -> str:
    """``path`` if it is a model folder, else a one-line ``FileNotFoundError``."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not a model folder (expected config.json and weights)")
    if not os.path.exists(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{path}: no config.json; is this a model folder?")
    return path


def load_pretrained(path: str, *, trust_remote_code: bool = False):
    """``(tokenizer, model)`` from a local folder; the tokenizer gets a pad token if it has
    none (unk, else eos), so batches can be padded."""
    check_model_path(path)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
    ensure_pad_token(tok)
    return tok, model


def ensure_pad_token(tok) -> None:
    """Give ``tok`` a pad token if it has none (unk, else eos); padding is masked out anyway."""
    if tok.pad_token_id is None:
        tok.pad_token = tok.unk_token or tok.eos_token
