"""Load a saved causal LM and its tokenizer: one place for every command that reads a model.

Remote code is never run unless the caller asks for it (``trust_remote_code=True``): a model
folder is data, and transformers would otherwise ask on a terminal and run the folder's Python
on "y". A name that is not a local folder is tried on the hub only when hub access is on
(``slaptune --online`` or ``HF_HUB_OFFLINE=0``).

>>> load_pretrained("./no/such/folder")
Traceback (most recent call last):
...
FileNotFoundError: ./no/such/folder: not a model folder (expected config.json and weights)
"""

from __future__ import annotations

import os
import re

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # org/name, or a bare name


def hub_allowed() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("1", "true", "yes", "on")


def is_hub_id(name: str) -> bool:
    """``org/name`` (or ``name``) that is not an existing path: something for the hub."""
    return bool(HUB_ID.match(name)) and ".." not in name and not os.path.exists(name)


def check_model_path(path: str) -> str:
    """``path`` if it is a model folder (or a hub id while hub access is on), else a one-line
    ``FileNotFoundError`` saying why."""
    if is_hub_id(path):
        if hub_allowed():
            return path
        raise FileNotFoundError(
            f"{path}: not a model folder here, nor reachable: hub access is off "
            "(HF_HUB_OFFLINE=1); pass --online to download it, or give a local folder"
        )
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not a model folder (expected config.json and weights)")
    if not os.path.exists(os.path.join(path, "config.json")):
        if os.path.exists(os.path.join(path, "adapter_config.json")):
            raise FileNotFoundError(
                f"{path}: a LoRA adapter folder; merge it first: slaptune export {path} OUT "
                "--merge-lora"
            )
        raise FileNotFoundError(f"{path}: no config.json; is this a model folder?")
    return path


def load_pretrained(path: str, *, trust_remote_code: bool = False):
    """``(tokenizer, model)`` from a local folder; the tokenizer gets a pad token if it has
    none (unk, else eos), so batches can be padded."""
    check_model_path(path)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)  # code check first
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        if "trust_remote_code" in str(e) and not trust_remote_code:
            raise ValueError(
                f"{path}: the model ships its own Python code, which is not run by default; "
                "pass --trust-remote-code only if you trust its source"
            ) from None
        if not is_hub_id(path):
            raise
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FileNotFoundError(f"{path}: not reachable on the hub ({first})") from None
    ensure_pad_token(tok)
    return tok, model


def ensure_pad_token(tok) -> None:
    """Give ``tok`` a pad token if it has none (unk, else eos); padding is masked out anyway."""
    if tok.pad_token_id is None:
        tok.pad_token = tok.unk_token or tok.eos_token
