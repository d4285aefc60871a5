"""Stable example ids: every training row carries its dataset index as ``slap_id``.

Torch only. The reuse mode's score table, the selection log and resume all key on these ids.

>>> ds = with_example_ids([{"input_ids": [1, 2]}, {"input_ids": [3]}])
>>> ds[1]
{'input_ids': [3], 'slap_id': 1}
"""

from __future__ import annotations

import torch

from .rows import ID_KEY


class IndexedDataset(torch.utils.data.Dataset):
    """A map-style dataset of dicts, each item extended with its index as ``slap_id``."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return {**self.inner[i], ID_KEY: i}


def with_example_ids(dataset):
    """Give every training example a stable id (its index), whatever the dataset type."""
    if dataset is None or _has_ids(dataset):
        return dataset
    if hasattr(dataset, "add_column"):  # datasets.Dataset
        return dataset.add_column(ID_KEY, list(range(len(dataset))))
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise ValueError("slaptune needs a map-style training dataset (len and indexing)")
    return IndexedDataset(dataset)


def _has_ids(dataset) -> bool:
    names = getattr(dataset, "column_names", None)
    return bool(names) and ID_KEY in names


class IdCollator:
    """Wrap a collator so that ``slap_id`` survives it as a ``(B,)`` tensor."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples):
        if not examples or ID_KEY not in examples[0]:  # evaluation data carries no ids
            return self.inner(examples)
        ids = [ex[ID_KEY] for ex in examples]
        batch = self.inner([{k: v for k, v in ex.items() if k != ID_KEY} for ex in examples])
        batch[ID_KEY] = torch.tensor(ids, dtype=torch.long)
        return batch
