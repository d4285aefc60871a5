"""Checkpoints that never lie (issue 12, items 1-5): the selection state is written before the
Trainer's files, a broken checkpoint is skipped with a message, nothing is unpickled, the
selection log and the metrics continue across a resume, and other settings are refused."""

import json
import os
import pickle
import shutil

import pytest
import torch
from transformers import TrainerCallback

from slaptune.engine.selection_log import read_records
from slaptune.integrations import checkpoints as ckpt
from tests.integrations.helpers import make_trainer, token_dataset, train_args

STEPS = 6


def trainer_for(out, tok, tiny_model, stop_at=None, **kw):
    """Reuse-mode SLAP on 48 rows, 6 steps, a checkpoint every 2; ``stop_at`` interrupts."""
    model = tiny_model("llama-tiny", vocab_size=len(tok)).train()
    base = dict(
        max_steps=STEPS,
        keep_ratio=0.5,
        scoring="reuse",
        save_strategy="steps",
        save_steps=2,
        save_total_limit=3,
        lr_scheduler_type="constant",
    )
    base.update(kw)
    trainer = make_trainer(model, train_args(out, **base), token_dataset(48, len(tok)), tok)
    if stop_at is not None:

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step >= stop_at:
                    control.should_training_stop = True
                return control

        trainer.add_callback(Stop())
    return trainer


@pytest.fixture(scope="module")
def reference(tmp_path_factory, byte_tokenizer):
    """The uninterrupted run: weights, ledger, log and train loss."""
    from slaptune.models.presets import build_model

    def tiny(preset, vocab_size):
        return build_model(preset, vocab_size, seed=0)

    out = tmp_path_factory.mktemp("reference")
    trainer = trainer_for(out, byte_tokenizer, tiny)
    result = trainer.train()
    return {
        "weights": [p.detach().clone() for p in trainer.model.parameters()],
        "ledger": trainer.slap_engine.ledger.summary(),
        "log": read_records(out / "selection.jsonl"),
        "train_loss": result.training_loss,
    }


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, byte_tokenizer):
    """A run stopped after step 4: checkpoints 2 and 4."""
    from slaptune.models.presets import build_model

    def tiny(preset, vocab_size):
        return build_model(preset, vocab_size, seed=0)

    out = tmp_path_factory.mktemp("interrupted")
    trainer_for(out, byte_tokenizer, tiny, stop_at=4).train()
    assert sorted(os.listdir(out)) == ["checkpoint-2", "checkpoint-4", "selection.jsonl"]
    return out


def copy_of(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


COUNTERS = ("samples_seen", "samples_trained", "tokens_seen", "tokens_trained", "windows")


def assert_same_run(trainer, result, out, reference):
    for p, q in zip(trainer.model.parameters(), reference["weights"]):
        assert torch.equal(p, q)
    ledger = trainer.slap_engine.ledger.summary()
    assert {k: ledger[k] for k in COUNTERS} == {k: reference["ledger"][k] for k in COUNTERS}
    assert ledger["flops_scoring"] == pytest.approx(reference["ledger"]["flops_scoring"])
    assert read_records(out / "selection.jsonl") == reference["log"]
    assert result.training_loss == pytest.approx(reference["train_loss"], rel=1e-6)


def resume(out, tok, tiny_model, **kw):
    trainer = trainer_for(out, tok, tiny_model, **kw)
    return trainer, trainer.train(resume_from_checkpoint=True)


# ---- item 1: the state is part of the checkpoint, and a checkpoint without it is skipped ------


def test_selection_state_is_on_disk_before_trainer_state_json(
    byte_tokenizer, tiny_model, tmp_path, monkeypatch
):
    from transformers.trainer_callback import TrainerState

    seen = []
    original = TrainerState.save_to_json

    def spy(self, path):
        folder = os.path.dirname(path)
        seen.append(os.path.isfile(os.path.join(folder, ckpt.STATE_FILE.format(rank=0))))
        return original(self, path)

    monkeypatch.setattr(TrainerState, "save_to_json", spy)
    trainer_for(tmp_path, byte_tokenizer, tiny_model, max_steps=4).train()
    assert seen and all(seen)


BREAKAGES = {
    "state_missing": lambda f: os.remove(f / "slaptune_state_rank0.safetensors"),
    "state_torn": lambda f: open(f / "slaptune_state_rank0.safetensors", "r+b").truncate(60),
    "trainer_state_torn": lambda f: (f / "trainer_state.json").write_text('{"global_st'),
    "trainer_state_missing": lambda f: os.remove(f / "trainer_state.json"),
    "weights_missing": lambda f: os.remove(f / "model.safetensors"),
    "optimizer_missing": lambda f: os.remove(f / "optimizer.pt"),
}


@pytest.mark.parametrize("broken", sorted(BREAKAGES))
def test_broken_newest_checkpoint_falls_back_to_the_complete_one(
    byte_tokenizer, tiny_model, tmp_path, capsys, interrupted, reference, broken
):
    out = copy_of(interrupted, tmp_path)
    BREAKAGES[broken](out / "checkpoint-4")
    trainer, result = resume(out, byte_tokenizer, tiny_model)
    err = capsys.readouterr().err
    assert "slaptune: skipping checkpoint-4: " in err and "resuming from checkpoint-2" in err
    assert_same_run(trainer, result, out, reference)


def test_no_complete_checkpoint_is_a_one_line_error_naming_the_folder(
    byte_tokenizer, tiny_model, tmp_path, interrupted
):
    out = copy_of(interrupted, tmp_path)
    for name in ("checkpoint-2", "checkpoint-4"):
        os.remove(out / name / "slaptune_state_rank0.safetensors")
    with pytest.raises(ValueError) as e:
        resume(out, byte_tokenizer, tiny_model)
    msg = str(e.value)
    assert "\n" not in msg and "no complete checkpoint" in msg and f"delete {out}" in msg


# ---- item 2: nothing in a checkpoint is unpickled ----------------------------------------------


class Payload:
    """Unpickling this runs ``open(marker, 'w')``: what a planted checkpoint file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["slaptune_state_rank0.pt", "slaptune_state_rank0.safetensors"])
def test_planted_pickle_in_a_checkpoint_does_not_run(
    byte_tokenizer, tiny_model, tmp_path, interrupted, name
):
    out = copy_of(interrupted, tmp_path)
    marker = tmp_path / "pwned"
    for folder in ("checkpoint-2", "checkpoint-4"):
        for old in (out / folder).glob("slaptune_state_rank*"):
            old.unlink()
        with open(out / folder / name, "wb") as f:
            pickle.dump({"ledger": Payload(str(marker))}, f)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resume(out, byte_tokenizer, tiny_model)
    assert not marker.exists()


def test_state_round_trips_through_weights_only_load(tmp_path, interrupted):
    """The PyTorch-loop API: ``state_dict()`` holds only tensors and plain values."""
    state, _ = ckpt.load_state(str(interrupted / "checkpoint-4"), 0)
    torch.save(state, tmp_path / "s.pt")
    again = torch.load(tmp_path / "s.pt", weights_only=True)
    torch.testing.assert_close(again["table.losses"], state["table.losses"], equal_nan=True)
    assert again["ledger"] == state["ledger"]


# ---- item 3: selection.jsonl and metrics continue across a resume ------------------------------


def test_resume_rolls_the_log_back_and_continues_the_loss(
    byte_tokenizer, tiny_model, tmp_path, interrupted, reference
):
    out = copy_of(interrupted, tmp_path)
    shutil.rmtree(out / "checkpoint-4")  # resume from 2: records of steps 2, 3 are replayed
    with open(out / "selection.jsonl", "a") as f:
        f.write('{"step": 4, "epoch": 0, "se')  # torn by a crash
    trainer, result = resume(out, byte_tokenizer, tiny_model)
    assert [r["step"] for r in read_records(out / "selection.jsonl")] == list(range(STEPS))
    assert_same_run(trainer, result, out, reference)


def test_wall_clock_adds_the_part_before_the_checkpoint(byte_tokenizer, tiny_model, tmp_path):
    out = tmp_path / "run"
    trainer_for(out, byte_tokenizer, tiny_model, stop_at=2).train()
    meta = ckpt.read_meta(str(out / "checkpoint-2" / "slaptune_state_rank0.safetensors"))
    assert meta["wall_clock_s"] > 0
    trainer, _ = resume(out, byte_tokenizer, tiny_model)
    assert trainer._prior["wall_clock_s"] == meta["wall_clock_s"]
    assert trainer.slap_wall_clock_s > meta["wall_clock_s"]


# ---- item 5: a resume with other settings is refused ------------------------------------------


def test_resume_with_other_settings_is_refused_with_a_diff(
    byte_tokenizer, tiny_model, tmp_path, interrupted
):
    out = copy_of(interrupted, tmp_path)
    with pytest.raises(ValueError) as e:
        resume(out, byte_tokenizer, tiny_model, method="random", keep_ratio=0.3)
    msg = str(e.value)
    assert "\n" not in msg
    assert "keep_ratio 0.5 -> 0.3" in msg and "method slap -> random" in msg
    assert "--resume-override" in msg
    trainer = trainer_for(out, byte_tokenizer, tiny_model, keep_ratio=0.3, method="random")
    trainer.train(resume_from_checkpoint=True, allow_settings_change=True)
    assert trainer.state.global_step == STEPS


# ---- the same through the CLI ------------------------------------------------------------------


def cli_flags(tmp_path, out):
    from tests.shared import TINY, qa_records, write_jsonl

    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(48))
    return ["train", "--data", data, "--output-dir", str(out), *TINY, "--save-steps", "2"]


def test_cli_resume_of_a_finished_run_keeps_its_metrics(tmp_path, capsys):
    from slaptune.cli.main import main

    out = tmp_path / "run"
    flags = cli_flags(tmp_path, out)
    assert main(flags) == 0
    before = (out / "metrics.json").read_text()
    assert json.loads(before)["train_loss"] > 0
    capsys.readouterr()
    assert main([*flags, "--resume"]) == 0
    assert (out / "metrics.json").read_text() == before
    assert "is a finished run" in capsys.readouterr().err
    # Interrupted after its last checkpoint (no metrics yet): other settings are refused.
    os.remove(out / "metrics.json")
    assert main([*flags, "--resume", "--method", "random", "--keep-ratio", "0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("slaptune: error: --resume: settings differ")
    assert "keep_ratio 0.7 -> 0.3" in err[0] and "method slap -> random" in err[0]
    shutil.copytree(out, tmp_path / "other")
    other = [*flags, "--resume", "--method", "random", "--resume-override"]
    other[other.index("--output-dir") + 1] = str(tmp_path / "other")
    assert main(other) == 0  # the override accepts them
    assert json.loads((tmp_path / "other" / "metrics.json").read_text())["method"] == "random"
    assert main([*flags, "--resume"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["train_loss"] == pytest.approx(json.loads(before)["train_loss"], rel=1e-5)
    assert again["samples_seen"] == json.loads(before)["samples_seen"]
