"""What selection cost and saved: samples, tokens, FLOPs and wall-clock, side by side.

FLOPs are analytic (Kaplan et al.): ``2 P`` per token for a forward and ``6 P`` for a training
step (forward + backward), ``4 P`` when the base weights are frozen (LoRA: no weight-gradient
products for them), with ``P`` the parameter count and tokens the non-padding ones. Attention's
sequence-length term is left out, which at the sequence lengths used here (<= 512) is < 10%.

Time is measured two ways, because wall-clock on a shared machine is mostly other people's load:
``wall_s`` (elapsed) and ``cpu_s`` (this process's CPU time, all threads; ``time.process_time``),
both since the ledger was made. ``cpu_per_wall`` near the thread count means the cores were ours;
far below it, with ``load_avg`` (the 1-minute load average, sampled once per window) above the
core count, means the run waited for a busy machine and its wall-clock is not comparable.

>>> ledger = ComputeLedger(params=10, trainable_params=10)
>>> ledger.add_window(seen=4, trained=2, tokens_seen=40, tokens_trained=20, scored_tokens=40)
>>> s = ledger.summary()
>>> s["kept_share"], s["flops_scoring"], s["flops_training"]
(0.5, 800.0, 1200.0)
>>> s["cpu_s"] >= 0 and s["wall_s"] >= 0 and s["cores"] >= 1
True
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field


@dataclass
class ComputeLedger:
    samples_seen: int = 0
    samples_trained: int = 0
    samples_without_target: int = 0
    tokens_seen: int = 0
    tokens_trained: int = 0
    flops_scoring: float = 0.0
    flops_training: float = 0.0
    scoring_forwards: int = 0
    time_scoring_s: float = 0.0
    time_selection_s: float = 0.0
    windows: int = 0
    params: int = 0
    trainable_params: int = 0
    # Time before this process (a resumed run's books); this process's share is added live.
    wall_s: float = 0.0
    cpu_s: float = 0.0
    load_avg_sum: float = 0.0
    load_avg_samples: int = 0
    load_avg_max: float = 0.0
    _started: float = field(default_factory=time.perf_counter, repr=False)
    _cpu_started: float = field(default_factory=time.process_time, repr=False)
    # flops_scoring as last summed over ranks: window FLOPs are global (every rank adds the same
    # amount), the gradient sketch's are this rank's own until ``sum_over_ranks``.
    _scoring_synced: float = field(default=0.0, repr=False)

    def forward_flops(self, tokens: int) -> float:
        return 2.0 * self.params * tokens

    def train_flops(self, tokens: int) -> float:
        frozen = self.trainable_params < 0.5 * self.params
        return (4.0 if frozen else 6.0) * self.params * tokens

    def add_window(
        self,
        seen: int,
        trained: int,
        tokens_seen: int,
        tokens_trained: int,
        scored_tokens: int,
        no_target: int = 0,
    ) -> None:
        self.windows += 1
        self._sample_load()
        self.samples_seen += seen
        self.samples_trained += trained
        self.samples_without_target += no_target
        self.tokens_seen += tokens_seen
        self.tokens_trained += tokens_trained
        self.flops_scoring += self.forward_flops(scored_tokens)
        self._scoring_synced += self.forward_flops(scored_tokens)
        self.flops_training += self.train_flops(tokens_trained)

    def _sample_load(self) -> None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on Windows
            return
        self.load_avg_sum += load
        self.load_avg_samples += 1
        self.load_avg_max = max(self.load_avg_max, load)

    @contextmanager
    def timed(self, what: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            attr = f"time_{what}_s"
            setattr(self, attr, getattr(self, attr) + time.perf_counter() - t0)

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["flops_total"] = self.flops_scoring + self.flops_training
        d["kept_share"] = self.samples_trained / self.samples_seen if self.samples_seen else None
        d["flops_method"] = "analytic: 2P/token forward, 6P/token train (4P if base frozen)"
        d["wall_s"] = round(self.wall_s + time.perf_counter() - self._started, 3)
        d["cpu_s"] = round(self.cpu_s + time.process_time() - self._cpu_started, 3)
        d["cpu_per_wall"] = round(d["cpu_s"] / d["wall_s"], 3) if d["wall_s"] > 0 else None
        d["load_avg"] = (
            round(self.load_avg_sum / self.load_avg_samples, 2) if self.load_avg_samples else None
        )
        d["cores"] = os.cpu_count() or 1
        d["threads"] = _torch_threads()
        return d

    def sum_over_ranks(self, reduce) -> None:
        """Make ``flops_scoring`` global: ``reduce(x)`` sums a float over ranks (every rank calls
        this at the same point)."""
        local = self.flops_scoring - self._scoring_synced
        self.flops_scoring = self._scoring_synced + reduce(local)
        self._scoring_synced = self.flops_scoring

    def state_dict(self) -> dict:
        return self.summary()

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            if k in self.__dataclass_fields__ and not k.startswith("_"):
                setattr(self, k, v)
        self._scoring_synced = self.flops_scoring


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()
