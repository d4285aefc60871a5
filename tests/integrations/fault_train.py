"""Run by test_checkpoints.py: ``slaptune train`` on a tiny setup that kills itself (SIGKILL) at
one chosen point of its N-th checkpoint save, as a crash or ``kill -9`` would.

    python fault_train.py OUT_DIR POINT N [--resume] [extra CLI flags]

POINT is one of ``POINTS``, ``none``, or ``random`` (then N is a seed: SIGKILL after a random
delay from the first training window on). Each is a place where a real process can die while a
checkpoint is being written: before / inside / after slaptune's state, between the Trainer's
files, halfway through ``trainer_state.json``, while rotating old checkpoints, or halfway
through a line of ``selection.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

POINTS = (
    "before_state",  # nothing of checkpoint N written yet
    "state_tmp",  # slaptune's state half-written to its temporary file
    "after_state",  # slaptune's state complete, no Trainer file yet
    "after_model",  # weights written, optimizer not
    "before_rng",  # optimizer written, RNG state not
    "torn_trainer_state",  # half of trainer_state.json
    "before_rotate",  # checkpoint complete, older ones not yet deleted
    "mid_rotate",  # an older checkpoint partly deleted
    "after_save",  # everything written (on_save)
    "torn_log_line",  # half a selection.jsonl line, right after checkpoint N
)


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def qa_file(folder: str) -> str:
    path = os.path.join(folder, "qa.jsonl")
    if not os.path.exists(path):
        with open(path, "w") as f:
            for i in range(48):
                f.write(
                    json.dumps({"question": f"What is {i} plus {i % 5}?", "answer": str(i + i % 5)})
                )
                f.write("\n")
    return path


def flags(out: str, data: str) -> list[str]:
    return [
        "train",
        "--data", data,
        "--output-dir", out,
        "--model", "llama-tiny",
        "--data-format", "qa",
        "--epochs", "2",
        "--batch-size", "4",
        "--grad-accum", "2",
        "--eval-size", "8",
        "--eval-generate", "0",
        "--tokenizer-vocab", "300",
        "--max-length", "48",
        "--no-progress",
        "--logging-steps", "2",
        "--save-steps", "2",
        "--keep-ratio", "0.5",
        "--scoring", "reuse",
        "--threads", "1",
    ]  # fmt: skip


def install(point: str, nth: int) -> None:
    """Patch the save path so that the process dies at ``point`` of the ``nth`` save."""
    import transformers.trainer as tt
    from transformers.trainer_callback import TrainerState

    from slaptune.engine import selection_log
    from slaptune.integrations import checkpoints, hf

    saves = {"n": 0}

    def armed() -> bool:
        return saves["n"] == nth

    original_state = hf.SlapTrainerMixin._save_selection_state

    def save_selection_state(self, folder):
        saves["n"] += 1
        if armed() and point == "before_state":
            die()
        original_state(self, folder)
        if armed() and point == "after_state":
            die()

    hf.SlapTrainerMixin._save_selection_state = save_selection_state

    original_save_file = checkpoints.save_state

    def save_state(folder, rank, state, meta):
        if armed() and point == "state_tmp":
            path = os.path.join(folder, checkpoints.STATE_FILE.format(rank=rank))
            os.makedirs(folder, exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(b"\x00" * 100)
            die()
        return original_save_file(folder, rank, state, meta)

    checkpoints.save_state = save_state

    def wrap(cls, name, when):
        original = getattr(cls, name)

        def wrapped(*a, **kw):
            if armed() and point == when:
                die()
            return original(*a, **kw)

        setattr(cls, name, wrapped)

    wrap(tt.Trainer, "_save_optimizer_and_scheduler", "after_model")
    wrap(tt.Trainer, "_save_rng_state", "before_rng")

    original_json = TrainerState.save_to_json

    def save_to_json(self, json_path):
        if armed() and point == "torn_trainer_state":
            text = json.dumps({"global_step": self.global_step, "log_history": []})
            with open(json_path, "w") as f:
                f.write(text[: len(text) // 2])
            die()
        return original_json(self, json_path)

    TrainerState.save_to_json = save_to_json

    original_rotate = tt.rotate_checkpoints

    def rotate(output_dir, *a, **kw):
        if armed() and point == "before_rotate":
            die()
        if armed() and point == "mid_rotate":
            names = sorted(
                (n for n in os.listdir(output_dir) if n.startswith("checkpoint-")),
                key=lambda n: int(n.split("-")[1]),
            )
            if len(names) > 2:  # save_total_limit=2: the oldest goes; delete part of it
                for f in ("optimizer.pt", "trainer_state.json"):
                    p = os.path.join(output_dir, names[0], f)
                    if os.path.exists(p):
                        os.remove(p)
            die()
        return original_rotate(output_dir, *a, **kw)

    tt.rotate_checkpoints = rotate

    original_on_save = tt.CallbackHandler.on_save

    def on_save(self, *a, **kw):
        out = original_on_save(self, *a, **kw)
        if armed() and point == "after_save":
            die()
        return out

    tt.CallbackHandler.on_save = on_save

    original_append = selection_log.append_record

    def append(path, record):
        if saves["n"] == nth and point == "torn_log_line":
            with open(path, "a") as f:
                f.write(json.dumps(record)[:40])
            die()
        return original_append(path, record)

    selection_log.append_record = append


def kill_after_random_delay(seed: int, longest_s: float) -> None:
    """SIGKILL at a random moment after training starts (first selection window)."""
    import random
    import threading

    from slaptune.engine import window

    delay = random.Random(seed).uniform(0.0, longest_s)
    original = window.SelectionEngine.select_pool  # the trainers select through pools
    started = []

    def select_pool(self, *a, **kw):
        if not started:
            started.append(threading.Timer(delay, die))
            started[0].daemon = True
            started[0].start()
        return original(self, *a, **kw)

    window.SelectionEngine.select_pool = select_pool


def main(argv: list[str]) -> int:
    out, point, nth, *rest = argv
    if point == "random":  # nth is the seed
        kill_after_random_delay(int(nth), float(os.environ.get("FAULT_LONGEST_S", "3")))
    elif point != "none":
        install(point, int(nth))
    from slaptune.cli.main import main as cli

    folder = os.path.dirname(os.path.abspath(out))
    return cli([*flags(out, qa_file(folder)), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
