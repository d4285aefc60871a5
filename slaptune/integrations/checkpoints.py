"""Selection state inside HF checkpoint folders: written safely, read without pickle, checked.

Each rank writes ``slaptune_state_rank{r}.safetensors``: the tensors of the engine's state (score
table, this rank's pending scores) and, in the safetensors header, one JSON document with the
numbers (ledger, whole-run loss sum and wall-clock, the settings that shape selection and
training). Nothing read back is unpickled: safetensors holds only raw tensors and JSON.

``SlapTrainer`` writes it at the *start* of ``_save_checkpoint``, before the Trainer writes the
weights, the optimizer and, last, ``trainer_state.json``; so a folder with a readable
``trainer_state.json`` also has the selection state, and ``check_folder`` treats anything
less as an interrupted save. ``choose_checkpoint`` then resumes from the newest complete folder.

>>> import tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> path = save_state(folder, 0, {"table.losses": torch.ones(3), "ledger": {"samples_seen": 8}},
...            {"global_step": 2, "world_size": 1})
>>> state, meta = load_state(folder, 0)
>>> state["table.losses"].tolist(), state["ledger"], meta["global_step"]
([1.0, 1.0, 1.0], {'samples_seen': 8}, 2)
>>> settings_diff({"keep_ratio": 0.5, "method": "slap"}, {"keep_ratio": 0.3, "method": "slap"})
'keep_ratio 0.5 -> 0.3'
"""

from __future__ import annotations

import glob
import json
import os
import re

import torch

STATE_FILE = "slaptune_state_rank{rank}.safetensors"
FORMAT = 1
TRAINER_STATE = "trainer_state.json"
# What Trainer._load_from_checkpoint accepts as the model's weights.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # directories cannot be fsync'ed everywhere
        pass
    finally:
        os.close(fd)


def save_state(folder: str, rank: int, state: dict, meta: dict) -> str:
    """Write ``state`` (tensors + one JSON-able ``ledger``-style rest) and ``meta`` atomically:
    a temporary file, fsync, then rename. Returns the path."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items() if _is_tensor(v)}
    rest = {k: v for k, v in state.items() if not _is_tensor(v)}
    header = {"slaptune": json.dumps({**meta, "format": FORMAT, "rank": rank, "state": rest})}
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, STATE_FILE.format(rank=rank))
    save_file(tensors, path + ".tmp", metadata=header)
    _fsync(path + ".tmp")
    os.replace(path + ".tmp", path)
    _fsync(folder)
    return path


def _is_tensor(v) -> bool:
    return isinstance(v, torch.Tensor)


def read_meta(path: str) -> dict:
    """The JSON header of a state file (raises ``ValueError`` if it is torn or foreign)."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            meta = json.loads((f.metadata() or {})["slaptune"])
            keys = list(f.keys())
    except Exception as e:  # truncated, not safetensors, or no slaptune header
        raise ValueError(f"{os.path.basename(path)} is unreadable ({_first_line(e)})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{os.path.basename(path)} has format {meta.get('format')}, not {FORMAT}")
    meta["tensors"] = keys
    return meta


def load_state(folder: str, rank: int) -> tuple[dict, dict]:
    """``(state, meta)`` of ``rank`` as ``save_state`` wrote them."""
    from safetensors.torch import load_file

    path = os.path.join(folder, STATE_FILE.format(rank=rank))
    meta = read_meta(path)
    try:
        tensors = load_file(path)
    except Exception as e:
        raise ValueError(f"{path} is unreadable ({_first_line(e)})") from None
    return {**tensors, **meta.pop("state")}, meta


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]


def step_of(folder: str) -> int | None:
    m = _CHECKPOINT.match(os.path.basename(os.path.normpath(folder)))
    return int(m.group(1)) if m else None


def check_folder(folder: str, *, needs_optimizer: bool = True) -> str | None:
    """Why ``folder`` cannot be resumed from, or None if it is a complete checkpoint."""
    step = step_of(folder)
    ts = os.path.join(folder, TRAINER_STATE)
    if not os.path.isfile(ts):
        return f"no {TRAINER_STATE} (the save was interrupted)"
    try:
        with open(ts, encoding="utf-8") as f:
            saved = json.load(f)
    except (ValueError, OSError) as e:
        return f"{TRAINER_STATE} is torn ({_first_line(e)})"
    if step is not None and saved.get("global_step") != step:
        return f"{TRAINER_STATE} says step {saved.get('global_step')}, the folder name {step}"
    deepspeed = os.path.isfile(os.path.join(folder, "latest"))
    if not deepspeed and not any(os.path.isfile(os.path.join(folder, w)) for w in WEIGHT_FILES):
        return "no model weights"
    state0 = os.path.join(folder, STATE_FILE.format(rank=0))
    if not os.path.isfile(state0):
        if glob.glob(os.path.join(folder, "slaptune_state_rank*.pt")):
            return (
                "its selection state is an old pickle file (.pt), which slaptune no longer "
                "loads because unpickling can run code"
            )
        return "no slaptune selection state (the save was interrupted, or not a slaptune run)"
    try:
        meta = read_meta(state0)
    except ValueError as e:
        return str(e)
    if step is not None and meta.get("global_step") != step:
        return f"its selection state is of step {meta.get('global_step')}, not {step}"
    world = int(meta.get("world_size", 1))
    for r in range(1, world):
        path = os.path.join(folder, STATE_FILE.format(rank=r))
        if not os.path.isfile(path):
            return f"no selection state of rank {r}"
        try:
            read_meta(path)
        except ValueError as e:
            return str(e)
    if needs_optimizer and not deepspeed:
        rng = ["rng_state.pth"] if world == 1 else [f"rng_state_{r}.pth" for r in range(world)]
        for name in ("optimizer.pt", "scheduler.pt", *rng):
            if not os.path.isfile(os.path.join(folder, name)):
                return f"no {name}"
    return None


def choose_checkpoint(output_dir: str, check) -> tuple[str, list[tuple[str, str]]]:
    """The newest complete ``checkpoint-N`` in ``output_dir`` and the newer ones skipped, as
    ``(name, why)``. Raises ``ValueError`` (one line) when none is complete."""
    names = sorted(
        (n for n in os.listdir(output_dir) if _CHECKPOINT.match(n)),
        key=lambda n: int(_CHECKPOINT.match(n).group(1)),
        reverse=True,
    )
    names = [n for n in names if os.path.isdir(os.path.join(output_dir, n))]
    if not names:
        raise FileNotFoundError(f"--resume: {output_dir} has no checkpoint-* folder to resume from")
    skipped = []
    for name in names:
        why = check(os.path.join(output_dir, name))
        if why is None:
            return os.path.join(output_dir, name), skipped
        skipped.append((name, why))
    listed = "; ".join(f"{n}: {w}" for n, w in skipped)
    raise ValueError(
        f"--resume: no complete checkpoint in {output_dir} ({listed}); delete {output_dir} "
        "(or move it away) and train again without --resume"
    )


def settings_diff(saved: dict, now: dict) -> str:
    """``"name old -> new, ..."`` over the settings both sides have ('' when equal)."""
    changed = [
        f"{k} {saved[k]!r} -> {now[k]!r}".replace("'", "")
        for k in sorted(saved.keys() & now.keys())
        if saved[k] != now[k]
    ]
    return ", ".join(changed)
