"""Run by test_distributed.py under torchrun: the plain-PyTorch SlapSelector in an Accelerate
loop on 2 gloo ranks; dumps each rank's kept ids and losses."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from accelerate import Accelerator  # noqa: E402

from slaptune import SelectionConfig  # noqa: E402
from slaptune.integrations.pytorch import SlapSelector  # noqa: E402
from slaptune.models.presets import build_model  # noqa: E402
from tests.conftest import prompt_completion_batch  # noqa: E402


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    model = build_model("llama-tiny", 64, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model, opt = acc.prepare(model, opt)
    selector = SlapSelector(acc.unwrap_model(model), opt, SelectionConfig(keep_ratio=0.5))
    records, losses = [], []
    for step in range(3):
        ids, labels = prompt_completion_batch(8, 12, 64, seed=100 * step + acc.process_index)
        batch = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": labels,
            "slap_id": torch.arange(8) + 8 * acc.process_index,
        }
        sub = selector.select(batch, step=step)
        loss = selector.loss(model, sub)
        acc.backward(loss)
        opt.step()
        opt.zero_grad()
        records.append(selector.engine.last_record["kept_ids"])
        losses.append(float(loss))
        assert sub["input_ids"].shape[0] == 4  # 16 global rows, 8 kept, 4 per rank
    with open(os.path.join(out_dir, f"acc{acc.process_index}.json"), "w") as f:
        json.dump({"kept": records, "losses": losses}, f)


if __name__ == "__main__":
    main(sys.argv[1])
    from slaptune.engine.distributed import shutdown

    shutdown()
