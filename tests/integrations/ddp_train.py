"""Run by test_distributed.py under ``torchrun --nproc_per_node 2`` (or alone for 1 process):
trains a tiny model with SlapTrainer and dumps every window's selection and the final loss."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from slaptune.integrations.hf import SlapTrainer  # noqa: E402
from slaptune.models.presets import build_model, build_tokenizer  # noqa: E402
from tests.integrations.helpers import collator, token_dataset, train_args  # noqa: E402


def main(out_dir: str, method: str, per_device: int) -> None:
    torch.set_num_threads(1)
    tok = build_tokenizer()
    model = build_model("llama-tiny", len(tok), seed=0)
    ds = token_dataset(64, len(tok))
    stage = os.environ.get("SLAPTUNE_TEST_ZERO")
    deepspeed = None
    if stage:  # DeepSpeed wraps Trainer's torch AdamW (no optimizer block)
        deepspeed = {
            "zero_optimization": {"stage": int(stage)},
            "gradient_clipping": "auto",
            "train_micro_batch_size_per_gpu": "auto",
            "train_batch_size": "auto",
            "gradient_accumulation_steps": "auto",
        }
    args = train_args(
        out_dir,
        per_device_train_batch_size=per_device,
        max_steps=3,
        method=method,
        keep_ratio=0.5,
        deepspeed=deepspeed,
        ddp_backend="gloo" if "WORLD_SIZE" in os.environ else None,
    )
    trainer = SlapTrainer(
        model=model, args=args, train_dataset=ds, data_collator=collator(tok), processing_class=tok
    )
    records = []
    original = trainer.slap_engine._record

    def keep(*a, **kw):
        original(*a, **kw)
        records.append(trainer.slap_engine.last_record)

    trainer.slap_engine._record = keep
    result = trainer.train()
    rank = int(os.environ.get("RANK", 0))
    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(
            {
                "records": records,
                "train_loss": result.training_loss,
                "weights_norm": float(weights.norm()),
                "weights_sum": float(weights.sum()),
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    from slaptune.engine.distributed import shutdown

    shutdown()
