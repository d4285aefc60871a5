"""``ScoreTable``: the last recorded loss and gradient feature of every example (reuse mode).

Memory is O(dataset): per example a float32 loss, an int32 epoch stamp and a ``d``-dim feature in
bfloat16, i.e. ``8 + 2 d`` bytes (8.2 KB at the default ``d = 64 x 64``; 0.8 GB per 100k examples).
Features are stored in bfloat16 because only their distances matter.
"""

from __future__ import annotations

import torch


class ScoreTable:
    """Scores keyed by example id (``0 <= id < size``).

    >>> t = ScoreTable(4)
    >>> t.update(torch.tensor([2]), torch.tensor([1.5]), torch.ones(1, 3), epoch=0)
    >>> have, losses, feats = t.lookup(torch.tensor([2, 3]), epoch=1, max_staleness=0)
    >>> have.tolist(), losses[0].item(), feats.shape
    ([True, False], 1.5, torch.Size([2, 3]))
    """

    def __init__(self, size: int, feature_dtype: torch.dtype = torch.bfloat16):
        self.size = size
        self.losses = torch.full((size,), float("nan"))
        self.epoch = torch.full((size,), -1, dtype=torch.int32)
        self.features: torch.Tensor | None = None
        self.feature_dtype = feature_dtype

    def _check(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.cpu().long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"example id out of range [0, {self.size}): {ids.tolist()[:8]}")
        return ids

    def update(self, ids, losses, features, epoch: int) -> None:
        ids = self._check(ids)
        self.losses[ids] = losses.detach().float().cpu()
        self.epoch[ids] = epoch
        if features is not None:
            if self.features is None:
                self.features = torch.zeros(self.size, features.shape[1], dtype=self.feature_dtype)
            self.features[ids] = features.detach().cpu().to(self.feature_dtype)

    def lookup(self, ids, epoch: int, max_staleness: int = 0):
        """``(have, losses, features)`` for ``ids``; ``have`` is False for never-scored examples
        and, if ``max_staleness > 0``, for scores older than that many epochs."""
        ids = self._check(ids)
        have = self.epoch[ids] >= 0
        if max_staleness > 0:
            have &= (epoch - self.epoch[ids]) <= max_staleness
        feats = None if self.features is None else self.features[ids].float()
        return have, self.losses[ids].clone(), feats

    def mean_loss(self) -> float | None:
        seen = self.epoch >= 0
        return float(self.losses[seen].mean()) if seen.any() else None

    def state_dict(self) -> dict:
        return {"losses": self.losses, "epoch": self.epoch, "features": self.features}

    def load_state_dict(self, state: dict) -> None:
        self.losses, self.epoch, self.features = state["losses"], state["epoch"], state["features"]
        self.size = self.losses.numel()
