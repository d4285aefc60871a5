"""Load a saved causal LM and its tokenizer: one place for every command that reads a model.

A model is a folder (config.json + weights), a ``.gguf`` file (dequantized on load, see
``slaptune.models.gguf``) or, when hub access is on (``slaptune --online`` or
``HF_HUB_OFFLINE=0``), a hub id. Remote code is never run unless the caller asks for it
(``trust_remote_code=True``): a model folder is data, and transformers would otherwise ask on a
terminal and run the folder's Python on "y".

>>> load_pretrained("./no/such/folder")
Traceback (most recent call last):
...
FileNotFoundError: ./no/such/folder: not a model folder (expected config.json and weights)
>>> is_model_path("no/such/model.gguf")
False
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # org/name, or a bare name


def hub_allowed() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("1", "true", "yes", "on")


def is_hub_id(name: str) -> bool:
    """``org/name`` (or ``name``) that is not an existing path: something for the hub."""
    return bool(HUB_ID.match(name)) and ".." not in name and not os.path.exists(name)


def is_model_path(path: str) -> bool:
    """True for a folder or an existing ``.gguf`` file: what ``--model`` takes besides presets."""
    from .gguf import is_gguf_file

    return os.path.isdir(path) or is_gguf_file(path)


def check_model_path(path: str) -> str:
    """``path`` if it is a model folder, a .gguf file or (hub access on) a hub id, else a
    one-line ``FileNotFoundError`` saying why."""
    from .gguf import is_gguf_file

    if is_gguf_file(path):
        return path
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
    """``(tokenizer, model)`` from a local folder or .gguf file; the tokenizer gets a pad token
    if it has none (unk, else eos), so batches can be padded."""
    from .gguf import is_gguf_file, load_gguf

    check_model_path(path)
    if is_gguf_file(path):
        return load_gguf(path)
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


@contextlib.contextmanager
def writing_folder(out_dir: str):
    """Yield a fresh temporary folder next to ``out_dir``; renamed to ``out_dir`` when the block
    succeeds, deleted when it fails. Refuses an existing ``out_dir`` before any work.

    The temporary name is unique (``OUT.partial-XXXX``), so a folder left by a killed run never
    mixes into a new one.

    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> with writing_folder(os.path.join(root, "out")) as tmp:
    ...     open(os.path.join(tmp, "a.txt"), "w").close()
    >>> os.listdir(root), os.listdir(os.path.join(root, "out"))
    (['out'], ['a.txt'])
    """
    out_dir = out_dir.rstrip("/") or out_dir
    if os.path.exists(out_dir):
        raise FileExistsError(f"{out_dir} exists; choose a new output folder")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{parent}: no such folder for the output {out_dir}")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{parent}: not writable; choose another output folder")
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".partial-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise stick to the output folder
    try:
        yield tmp
        if os.path.exists(out_dir):
            raise FileExistsError(f"{out_dir} appeared while converting; choose a new folder")
        os.rename(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
