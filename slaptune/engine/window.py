"""``SelectionEngine``: a pool of gradient-accumulation windows in, the kept micro-batches out.

This is the piece every integration shares (HF Trainer, TRL, a plain loop): it scores the
pool with the current model (``fresh``) or looks the scores up (``reuse``), gathers them from
every rank, runs ``slaptune.select.select`` over the candidates **ordered by example id** with
a generator seeded by (seed, step) (so every rank, any world size and any order of the rows
make the same choice), deals the kept rows back evenly over the pool's steps and ranks, and
keeps the books (``ComputeLedger``, ``selection.jsonl``). It imports torch only; distributed
calls go through ``.distributed``. What is method-specific comes from the method's
``MethodSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import SelectionConfig
from ..select import select
from . import distributed as dist
from .budget import kept_count, per_step_counts
from .ledger import ComputeLedger
from .rows import (
    ID_KEY,
    PAD_VALUES,
    ROW_KEYS,
    WEIGHT_KEY,
    check_batch,
    split_rows,
    stack_rows,
    supervised_tokens,
    take_rows,
)
from .scorer import MODEL_INPUT_KEYS, WindowScorer, model_inputs
from .selection_log import IntervalStats, SelectionLog, selection_record

# Independent random streams of one selection (same (seed, step), different draws).
STREAM_SELECT, STREAM_UNSCORED = 0, 1


def selection_generator(seed: int, step: int, stream: int = STREAM_SELECT) -> torch.Generator:
    """The generator of one selection: a function of (seed, step, stream) only, identical on
    every rank and after a resume."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 16 + stream)


@dataclass
class WindowScores:
    """Per-row signals of a pool (all ``(N,)`` on the CPU unless said otherwise).

    Attributes:
        losses: token-mean loss (0 where there is none).
        valid: the row has a supervised token (else it is never trained on).
        have: the row has a score (False: never scored yet, reuse mode).
        features: ``(N, d)`` gradient features, or None for methods that read none.
        how: where the features came from ("none": nothing was scored).
    """

    losses: torch.Tensor
    valid: torch.Tensor
    have: torch.Tensor
    features: torch.Tensor | None
    how: str

    def gathered(self, device) -> WindowScores:
        """Every rank's rows, rank-major (the order of ``dist.gather_rows``)."""

        def g(t):
            return dist.gather_rows(t.to(device)).cpu()

        feats = None if self.features is None else g(self.features)
        return WindowScores(g(self.losses), g(self.valid), g(self.have), feats, self.how)


@dataclass
class Choice:
    """Pool positions kept (sorted), with their weights and strata, or ``kept=None``."""

    kept: torch.Tensor | None
    weights: torch.Tensor | None
    strata: torch.Tensor | None
    info: dict


class SelectionEngine:
    """Select inside each pool of windows (one window per optimizer step).

    Args:
        config: the selection settings.
        model: the module to score with (unwrapped: not the DDP/DeepSpeed wrapper).
        optimizer: its optimizer, for Adam preconditioning (None: identity).
        pad_token_id: pad id for ``input_ids`` when rows of different lengths are stacked.
        dataset_size: number of training examples (ids are ``0..size-1``); needed for ``reuse``.
        log_path: where rank 0 appends one JSON line per pool (None: no log).
        second_moment_fn: ``param -> (tensor | None, how)``; the DeepSpeed integration passes one
            that reads partitioned state.
        seed: the run's seed, used when ``config.selection_seed`` is None.
    """

    def __init__(
        self,
        config: SelectionConfig,
        model: torch.nn.Module,
        optimizer=None,
        *,
        pad_token_id: int = 0,
        dataset_size: int | None = None,
        log_path: str | None = None,
        second_moment_fn=None,
        seed: int = 0,
    ):
        self.config, self.model, self.optimizer = config, model, optimizer
        self.spec = config.spec
        self.pad_token_id = pad_token_id
        self.seed = seed if config.selection_seed is None else config.selection_seed
        if self.spec.needs_features and config.feature_source == "none":
            raise ValueError(f"method {config.method!r} needs features; feature_source is 'none'")
        self.needs_features = self.spec.needs_features
        self.ledger = ComputeLedger()
        params = list(model.parameters())
        self.ledger.params = sum(getattr(p, "ds_numel", p.numel()) for p in params)
        self.ledger.trainable_params = sum(
            getattr(p, "ds_numel", p.numel()) for p in params if p.requires_grad
        )
        self.scorer = WindowScorer(
            config,
            model,
            optimizer,
            self.ledger,
            needs_features=self.needs_features,
            dataset_size=dataset_size,
            second_moment_fn=second_moment_fn,
            seed=self.seed,
        )
        self.table = self.scorer.table
        self.record_training_forward = self.scorer.record_training_forward
        self.log_path = log_path
        self.log = SelectionLog(log_path, config.selection_log, dist.is_main_process())
        self.stats = IntervalStats()
        self.last_record: dict = {}

    @property
    def reuse(self) -> bool:
        """Scores come from the score table (recorded training forwards), not a fresh pass."""
        return self.table is not None

    # ---- selection ----------------------------------------------------------------------------

    def select_window(
        self, batches: list[dict], *, step: int, epoch: int = 0, progress: float = 0.0
    ) -> list[dict]:
        """The kept rows of one window as ``len(batches)`` micro-batches (this rank's share).

        Every row keeps its ``slap_id``; a ``slap_weight`` column is added where the method
        weights examples. Windows where nothing is pruned come back unchanged.
        """
        return self.select_pool([batches], step=step, epoch=epoch, progress=progress)[0]

    def select_pool(
        self, windows: list[list[dict]], *, step: int, epoch: int = 0, progress: float = 0.0
    ) -> list[list[dict]]:
        """Select once over several windows (steps ``step .. step + len(windows) - 1``) and
        share the kept rows out over those steps: each gets the same number of rows (in whole
        units of micro-batches x ranks) and as many micro-batches as its window had."""
        world, rank = dist.world()
        batches = [b for w in windows for b in w]
        for b in batches:
            check_batch(b)
            if ID_KEY not in b:
                raise ValueError(f"batch has no {ID_KEY!r} column (example ids); see the docs")
        if len({len(w) for w in windows}) != 1:
            raise ValueError("every window of a pool must have the same number of micro-batches")
        self.scorer.flush_pending(epoch)
        if self._trains_everything(progress):  # no choice to make: no scoring either
            return [self._keep_all(w, step + j, epoch) for j, w in enumerate(windows)]
        rows = stack_rows(batches, self.pad_token_id)
        device = rows["input_ids"].device
        with self.ledger.timed("scoring"):
            local = self._scores(batches, rows, epoch)
        with self.ledger.timed("selection"):
            g_rows = {
                k: dist.gather_rows(
                    v, self.pad_token_id if k == "input_ids" else PAD_VALUES.get(k, 0)
                )
                for k, v in rows.items()
            }
            scores = local.gathered(device)
            unit = len(windows[0]) * world
            choice = self._choose(scores, g_rows[ID_KEY].cpu(), unit, len(windows), step)
        self._account(g_rows, scores, choice, step, epoch, len(windows))
        if choice.kept is None:  # nothing pruned: train on the windows as they came
            return windows
        out, start = [], 0
        for w, count in zip(windows, per_step_counts(choice.kept.numel(), unit, len(windows))):
            part = slice(start, start + count)
            start += count
            mine = choice.kept[part][rank::world]
            local_rows = take_rows(g_rows, mine)
            if choice.weights is not None:
                local_rows[WEIGHT_KEY] = choice.weights[part][rank::world].to(device)
            out.append(split_rows(local_rows, len(w)))
        return out

    def _scores(self, batches, rows, epoch) -> WindowScores:
        """This rank's scores for the pool's rows."""
        n = rows["input_ids"].shape[0]
        valid = supervised_tokens(rows["labels"]).cpu() > 0
        if not self.spec.uses_losses:  # random: no signal needed, no scoring paid
            return WindowScores(
                torch.zeros(n), valid, torch.ones(n, dtype=torch.bool), None, "none"
            )
        if self.reuse:
            have, losses, feats = self.table.lookup(
                rows[ID_KEY], epoch, self.config.reuse_max_staleness
            )
            losses = torch.nan_to_num(losses, nan=0.0)
            if self.needs_features and feats is None:
                feats = torch.zeros(n, self.config.sketch_vocab * self.config.sketch_hidden)
            return WindowScores(losses, valid, have, feats, "reuse")
        parts = [self.scorer.score_batch(b) for b in batches]
        losses = torch.cat([p[0] for p in parts]).cpu()
        valid = torch.cat([p[1] for p in parts]).cpu()
        feats = torch.cat([p[2] for p in parts]).cpu() if self.needs_features else None
        return WindowScores(losses, valid, torch.ones(n, dtype=torch.bool), feats, parts[0][3])

    def _trains_everything(self, progress: float) -> bool:
        cfg = self.config
        return self.spec.keeps_everything or cfg.keep_ratio >= 1.0 or progress >= cfg.anneal_point()

    def _keep_all(self, batches, step, epoch):
        ids = dist.gather_rows(torch.cat([b[ID_KEY] for b in batches])).cpu()
        tokens = sum(
            int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
            for b in batches
        )
        device = batches[0]["input_ids"].device
        tokens = int(dist.all_reduce_sum(torch.tensor(tokens, device=device)))
        self.ledger.add_window(ids.numel(), ids.numel(), tokens, tokens, 0)
        nothing = torch.zeros(ids.numel(), dtype=torch.bool)
        reason = {"reason": "keeps everything (full / keep_ratio 1 / annealed)"}
        self._record(
            step, epoch, ids, None, None, torch.zeros(ids.numel()), nothing, "none", reason
        )
        return batches

    def _choose(self, s: WindowScores, ids, unit: int, steps: int, step: int) -> Choice:
        """Global kept positions (sorted), or ``kept=None`` when the pool trains whole."""
        cfg = self.config
        valid = s.valid.clone()
        forced = valid & ~s.have
        budget = cfg.budget(int(valid.sum()))  # of the whole pool, before any sampling below
        if cfg.reuse_unscored == "sample" and forced.any():
            # Keep only a random keep_ratio share of the never-scored examples (drawn in id
            # order, from a stream of its own); the others stay unscored and come back later.
            idx = _by_id(forced.nonzero().flatten(), ids)
            gen = selection_generator(self.seed, step, STREAM_UNSCORED)
            n_take = round(cfg.keep_ratio * idx.numel())
            if n_take % unit and int((valid & s.have).sum()) < (-n_take) % unit:
                # Forced rows must fill whole units (rows per micro-batch x ranks); with too few
                # scored rows to top them up, sample fewer (else the window would train whole).
                n_take -= n_take % unit
            take = idx[torch.randperm(idx.numel(), generator=gen)[:n_take]]
            valid &= s.have | torch.zeros_like(valid).index_fill_(0, take, True)
            forced = torch.zeros_like(forced).index_fill_(0, take, True)
        n_forced = int(forced.sum())
        k = kept_count(budget, int(valid.sum()), n_forced, valid.numel(), unit, steps)
        if k is None:
            return Choice(None, None, None, {"reason": "pool too small or keep-all"})
        scored = _by_id((valid & s.have).nonzero().flatten(), ids)  # a function of the set
        options = cfg.method_options()
        if self.spec.table_threshold and self.reuse:
            options["threshold"] = self.table.mean_loss()
        sel = select(
            cfg.method,
            s.losses[scored],
            None if s.features is None else s.features[scored],
            k - n_forced,
            generator=selection_generator(self.seed, step),
            **options,
        )
        kept = torch.cat([forced.nonzero().flatten(), scored[sel.indices]])
        weights = strata = None
        if sel.weights is not None:
            weights = torch.cat([torch.ones(n_forced), sel.weights])
        if sel.strata is not None:
            strata = torch.cat([torch.full((n_forced,), -1), sel.kept_strata])
        order = torch.argsort(kept)
        info = {k_: v.tolist() if isinstance(v, torch.Tensor) else v for k_, v in sel.info.items()}
        info["forced_unscored"] = n_forced
        return Choice(
            kept[order],
            None if weights is None else weights[order],
            None if strata is None else strata[order],
            info,
        )

    # ---- books --------------------------------------------------------------------------------

    def _account(self, g_rows, s: WindowScores, choice: Choice, step, epoch, steps) -> None:
        tokens = g_rows["attention_mask"].sum(1).cpu() if "attention_mask" in g_rows else None
        if tokens is None:
            tokens = torch.full((s.losses.numel(),), g_rows["input_ids"].shape[1])
        scored_tokens = int(tokens.sum()) if (not self.reuse and s.how != "none") else 0
        scored = s.valid & s.have if s.how != "none" else torch.zeros_like(s.valid)
        kept = choice.kept
        n = s.losses.numel()
        self.ledger.add_window(
            n,
            n if kept is None else kept.numel(),
            int(tokens.sum()),
            int(tokens.sum() if kept is None else tokens[kept].sum()),
            scored_tokens,
            0 if kept is None else int((~s.valid).sum()),
        )
        self.ledger.windows += steps - 1
        info = dict(choice.info, pool_windows=steps) if steps > 1 else choice.info
        ids = g_rows[ID_KEY].cpu()
        self._record(step, epoch, ids, kept, choice.strata, s.losses, scored, s.how, info)

    def _record(self, step, epoch, ids, kept, strata, losses, scored, how, info) -> None:
        rec = selection_record(
            step=step,
            epoch=epoch,
            ids=ids,
            kept=kept,
            strata=strata,
            losses=losses,
            scored=scored,
            scoring=self.config.scoring,
            how=how,
            info=info,
        )
        self.last_record = rec
        self.stats.add(rec)
        self.log.write(rec)

    def pop_interval_stats(self) -> dict:
        """Kept share and mean window / kept losses since the last call."""
        return self.stats.pop()

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Flat and pickle-free: tensors under ``table.*`` / ``pending.*``, plain numbers under
        ``ledger`` (safe for safetensors + JSON, or ``torch.load(weights_only=True)``)."""
        out: dict = {"ledger": self.ledger.state_dict()}
        if self.table is not None:
            for k, v in self.table.state_dict().items():
                if v is not None:
                    out[f"table.{k}"] = v
        pending = self.scorer.pending
        if pending:  # this rank's recorded scores not yet shared (flushed at the next window)
            out["pending.ids"] = torch.cat([p[0] for p in pending])
            out["pending.losses"] = torch.cat([p[1] for p in pending])
            if pending[0][2] is not None:
                out["pending.features"] = torch.cat([p[2] for p in pending])
        return out

    def load_state_dict(self, state: dict) -> None:
        if "table" in state or "pending" in state:  # nested: an older slaptune's layout
            raise ValueError("selection state of an older slaptune version; start the run anew")
        if self.table is not None and "table.losses" in state:
            size = state["table.losses"].numel()
            if size != self.table.size:
                raise ValueError(
                    f"the saved score table has {size} examples, this dataset {self.table.size}"
                )
            self.table.load_state_dict(
                {k: state.get(f"table.{k}") for k in ("losses", "epoch", "features")}
            )
        self.scorer.pending = []
        if "pending.ids" in state:
            feats = state.get("pending.features")
            self.scorer.pending = [(state["pending.ids"], state["pending.losses"], feats)]
        self.ledger.load_state_dict(state["ledger"])


def _by_id(positions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``positions`` reordered by the example id at each position (ties by position)."""
    return positions[torch.argsort(ids[positions], stable=True)]


__all__ = [
    "ID_KEY",
    "MODEL_INPUT_KEYS",
    "ROW_KEYS",
    "WEIGHT_KEY",
    "Choice",
    "SelectionEngine",
    "WindowScores",
    "model_inputs",
    "selection_generator",
]
