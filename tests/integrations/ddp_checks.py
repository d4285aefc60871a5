"""Run by test_distributed_faults.py under ``torchrun --nproc_per_node 2`` (or alone).

ddp_checks.py cli OUT PER_DEVICE   # `slaptune train`; each rank dumps its ledger
ddp_checks.py hang OUT             # rank 1 stops answering at step 1
"""

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from slaptune.integrations import hf  # noqa: E402


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def cli(out: str, per_device: str) -> int:
    from slaptune.cli.main import main
    from tests.shared import TINY, qa_records, write_jsonl

    original = hf.SlapTrainerMixin.train

    def train(self, *a, **kw):
        result = original(self, *a, **kw)
        with open(os.path.join(out, f"ledger{rank()}.json"), "w") as f:
            json.dump(self.slap_engine.ledger.summary(), f)
        return result

    hf.SlapTrainerMixin.train = train
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "qa.jsonl")
    if rank() == 0:
        write_jsonl(data, qa_records(48))
    else:
        while not os.path.exists(data):
            time.sleep(0.1)
    run = os.path.join(out, "run")
    flags = [*TINY, "--batch-size", per_device, "--keep-ratio", "0.5", "--threads", "1"]
    return main(["train", "--data", data, "--output-dir", run, *flags])


def hang(out: str) -> int:
    from slaptune.models.presets import build_model, build_tokenizer
    from tests.integrations.helpers import collator, token_dataset, train_args

    original = hf.SlapTrainerMixin.get_batch_samples

    def get_batch_samples(self, *a, **kw):
        if rank() == 1 and self.state.global_step == 1:
            time.sleep(600)  # hung: alive, but never reaches the next collective
        return original(self, *a, **kw)

    hf.SlapTrainerMixin.get_batch_samples = get_batch_samples
    torch.set_num_threads(1)
    tok = build_tokenizer()
    args = train_args(out, per_device_train_batch_size=4, max_steps=3, ddp_backend="gloo")
    trainer = hf.SlapTrainer(
        model=build_model("llama-tiny", len(tok), seed=0),
        args=args,
        train_dataset=token_dataset(64, len(tok)),
        data_collator=collator(tok),
        processing_class=tok,
    )
    trainer.train()
    return 0


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    code = cli(out, *rest) if mode == "cli" else hang(out)
    from slaptune.engine.distributed import shutdown

    shutdown()
    sys.exit(code)
