"""``slaptune export MODEL OUT [--merge-lora]``: a plain model folder any tool can load.

With ``--merge-lora``, MODEL is a PEFT LoRA adapter folder (what ``train --lora`` writes):
the adapter is merged into its base model (``base_model_name_or_path`` of
``adapter_config.json``, or ``--base-model``). The folder is written under ``OUT.partial`` and
renamed when complete, so OUT is whole or absent.
"""

from __future__ import annotations

import json
import os
import shutil

from ..errors import check_writable
from ..options import add_online_flag


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="save a plain model folder (merge a LoRA adapter with --merge-lora)",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    p.add_argument("model", help="a model folder, or a LoRA adapter folder with --merge-lora")
    p.add_argument("out", help="the folder to write (must not exist, or be empty)")
    p.add_argument(
        "--merge-lora",
        action="store_true",
        help="merge the LoRA adapter in MODEL into its base model (default: off)",
    )
    p.add_argument(
        "--base-model",
        default="",
        help="the adapter's base model folder (default: the one named in adapter_config.json)",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped in the model folder (default: off)",
    )
    add_online_flag(p)


def _base_of(adapter: str, override: str) -> str:
    if override:
        return override
    path = os.path.join(adapter, "adapter_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            base = json.load(f).get("base_model_name_or_path")
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not base:
        raise ValueError(f"{path} names no base model; pass --base-model FOLDER")
    return base


def run(args) -> int:
    from ...models.load import load_pretrained

    is_adapter = os.path.isfile(os.path.join(args.model, "adapter_config.json"))
    if is_adapter and not args.merge_lora:
        raise ValueError(
            f"{args.model} is a LoRA adapter folder; pass --merge-lora to merge it into its base"
        )
    if args.merge_lora and not is_adapter:
        raise FileNotFoundError(
            f"{args.model}: no adapter_config.json, so not a LoRA adapter folder; "
            "drop --merge-lora to re-save a plain model"
        )
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise FileExistsError(f"{args.out} exists and is not empty; choose another OUT")
    check_writable(args.out)
    trust = args.trust_remote_code
    if is_adapter:
        from peft import PeftModel

        tok, base = load_pretrained(_base_of(args.model, args.base_model), trust_remote_code=trust)
        if os.path.isfile(os.path.join(args.model, "tokenizer_config.json")):
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(args.model, trust_remote_code=trust)
        model = PeftModel.from_pretrained(base, args.model).merge_and_unload()
    else:
        tok, model = load_pretrained(args.model, trust_remote_code=trust)
    partial = args.out.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)  # a leftover of an interrupted export
    try:
        model.save_pretrained(partial)
        tok.save_pretrained(partial)
        if os.path.isdir(args.out):
            os.rmdir(args.out)  # empty (checked above)
        os.replace(partial, args.out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    what = "merged LoRA model" if is_adapter else "model"
    print(f"wrote a {what} ({type(model).__name__}) to {args.out}")
    return 0
