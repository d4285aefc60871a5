"""``SelectionEngine``: one gradient-accumulation window in, the kept micro-batches out.

This is the piece every integration shares (HF Trainer, TRL, a plain loop): it scores the
window with the current model (``fresh``) or looks the scores up (``reuse``), gathers them from
every rank, runs ``slaptune.select.select`` with a generator seeded by the step (so every rank
makes the same choice), deals the kept rows back evenly and keeps the books (``ComputeLedger``,
``selection.jsonl``). It imports torch only; distributed calls go through ``.distributed``.
"""

from __future__ import annotations

import os

import torch

from ..config import SelectionConfig
from ..select import LOSS_FREE, NEEDS_FEATURES, select
from . import distributed as dist
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
from .selection_log import append_record


def selection_generator(seed: int, step: int) -> torch.Generator:
    """The generator of one window: a function of (seed, step) only, identical on every rank and
    after a resume."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


class SelectionEngine:
    """Select inside each window of micro-batches.

    Args:
        config: the selection settings.
        model: the module to score with (unwrapped: not the DDP/DeepSpeed wrapper).
        optimizer: its optimizer, for Adam preconditioning (None: identity).
        pad_token_id: pad id for ``input_ids`` when rows of different lengths are stacked.
        dataset_size: number of training examples (ids are ``0..size-1``); needed for ``reuse``.
        log_path: where rank 0 appends one JSON line per window (None: no log).
        second_moment_fn: ``param -> (tensor | None, how)``; the DeepSpeed integration passes one
            that reads partitioned state.
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
    ):
        self.config, self.model, self.optimizer = config, model, optimizer
        self.pad_token_id = pad_token_id
        needs_features = config.method in NEEDS_FEATURES and config.feature_source != "none"
        if config.method in NEEDS_FEATURES and config.feature_source == "none":
            raise ValueError(f"method {config.method!r} needs features; feature_source is 'none'")
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
            needs_features=needs_features,
            dataset_size=dataset_size,
            second_moment_fn=second_moment_fn,
        )
        self.table = self.scorer.table
        self.needs_features = needs_features
        self.record_training_forward = self.scorer.record_training_forward
        self.log_path = log_path
        if log_path and dist.is_main_process():  # once here, not on every step
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        self.last_record: dict = {}
        self._interval = self._new_interval()

    # ---- selection ----------------------------------------------------------------------------

    def _scores(self, batches, rows, epoch):
        """Local ``(losses, valid, features, have_score, how)`` for the window's rows."""
        n = rows["input_ids"].shape[0]
        if self.config.method in LOSS_FREE:  # random: no signal needed, no scoring paid
            valid = supervised_tokens(rows["labels"]).cpu() > 0
            return torch.zeros(n), valid, None, torch.ones(n, dtype=torch.bool), "none"
        if self.table is not None:
            have, losses, feats = self.table.lookup(
                rows[ID_KEY], epoch, self.config.reuse_max_staleness
            )
            losses = torch.nan_to_num(losses, nan=0.0)
            if self.needs_features and feats is None:
                feats = torch.zeros(n, self.config.sketch_vocab * self.config.sketch_hidden)
            valid = supervised_tokens(rows["labels"]).cpu() > 0
            return losses, valid, feats, have, "reuse"
        parts = [self.scorer.score_batch(b) for b in batches]
        losses = torch.cat([p[0] for p in parts]).cpu()
        valid = torch.cat([p[1] for p in parts]).cpu()
        feats = torch.cat([p[2] for p in parts]).cpu() if self.needs_features else None
        return losses, valid, feats, torch.ones(n, dtype=torch.bool), parts[0][3]

    def select_window(
        self, batches: list[dict], *, step: int, epoch: int = 0, progress: float = 0.0
    ) -> list[dict]:
        """The kept rows of this window as ``len(batches)`` micro-batches (this rank's share).

        Every row keeps its ``slap_id``; a ``slap_weight`` column is added where the method
        weights examples (InfoBatch). Windows where nothing is pruned come back unchanged.
        """
        world, rank = dist.world()
        for b in batches:
            check_batch(b)
            if ID_KEY not in b:
                raise ValueError(f"batch has no {ID_KEY!r} column (example ids); see the docs")
        self.scorer.flush_pending(epoch)
        if self._trains_everything(progress):  # no choice to make: no scoring either
            return self._keep_all(batches, step, epoch)
        rows = stack_rows(batches, self.pad_token_id)
        with self.ledger.timed("scoring"):
            losses, valid, feats, have, how = self._scores(batches, rows, epoch)
        with self.ledger.timed("selection"):
            g_rows = {
                k: dist.gather_rows(
                    v, self.pad_token_id if k == "input_ids" else PAD_VALUES.get(k, 0)
                )
                for k, v in rows.items()
            }
            g_losses, g_valid, g_have = (
                dist.gather_rows(t.to(rows["input_ids"].device)).cpu()
                for t in (losses, valid, have)
            )
            device = rows["input_ids"].device
            g_feats = None if feats is None else dist.gather_rows(feats.to(device)).cpu()
            kept, weights, strata, info = self._choose(
                g_losses, g_valid, g_have, g_feats, len(batches) * world, step, progress
            )
        tokens = g_rows["attention_mask"].sum(1).cpu() if "attention_mask" in g_rows else None
        if tokens is None:
            tokens = torch.full((g_losses.numel(),), g_rows["input_ids"].shape[1])
        fresh = self.table is None and how != "none"
        scored = int(tokens.sum()) if fresh else 0
        g_scored = g_valid & g_have if how != "none" else torch.zeros_like(g_valid)
        if kept is None:  # nothing pruned: train on the window as it came
            self.ledger.add_window(
                g_losses.numel(), g_losses.numel(), int(tokens.sum()), int(tokens.sum()), scored
            )
            self._log(
                step, epoch, g_rows[ID_KEY], None, None, g_losses, g_valid & g_have, how, info
            )
            return batches
        self.ledger.add_window(
            g_losses.numel(),
            kept.numel(),
            int(tokens.sum()),
            int(tokens[kept].sum()),
            scored,
            int((~g_valid).sum()),
        )
        self._log(step, epoch, g_rows[ID_KEY], kept, strata, g_losses, g_scored, how, info)
        mine = kept[rank::world]
        local = take_rows(g_rows, mine)
        if weights is not None:
            local[WEIGHT_KEY] = weights[rank::world].to(rows["input_ids"].device)
        return split_rows(local, len(batches))

    def _trains_everything(self, progress: float) -> bool:
        cfg = self.config
        annealed = cfg.method == "infobatch" and progress >= cfg.infobatch_delta
        return cfg.method == "full" or cfg.keep_ratio >= 1.0 or annealed

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
        self._log(
            step,
            epoch,
            ids,
            None,
            None,
            torch.zeros(ids.numel()),
            nothing,
            "none",
            {"reason": "keeps everything (full / keep_ratio 1 / annealed)"},
        )
        return batches

    def _choose(self, losses, valid, have, feats, unit, step, progress):
        """Global kept positions (sorted), their weights and strata, or ``kept=None`` when this
        window trains on everything."""
        cfg = self.config
        n_valid = int(valid.sum())
        forced = valid & ~have
        budget = cfg.budget(n_valid)  # of the whole window, before any sampling below
        gen = selection_generator(cfg.selection_seed, step)
        if cfg.reuse_unscored == "sample" and forced.any():
            # Keep only a random keep_ratio share of the never-scored examples; the others stay
            # unscored and are candidates again next epoch.
            idx = forced.nonzero().flatten()
            take = idx[
                torch.randperm(idx.numel(), generator=gen)[: round(cfg.keep_ratio * idx.numel())]
            ]
            valid = valid & (have | torch.zeros_like(valid).index_fill_(0, take, True))
            forced = torch.zeros_like(forced).index_fill_(0, take, True)
            n_valid = int(valid.sum())
        budget = max(budget, int(forced.sum()))
        k = min(max(round(budget / unit), 1) * unit, (n_valid // unit) * unit)
        k = max(k, -(-int(forced.sum()) // unit) * unit)
        if k == 0 or k > n_valid or (k == valid.numel()):
            return None, None, None, {"reason": "window too small or keep-all"}
        scored = (valid & have).nonzero().flatten()
        m = k - int(forced.sum())
        options = cfg.method_options()
        if cfg.method == "infobatch" and self.table is not None:
            options["threshold"] = self.table.mean_loss()
        sel = select(
            cfg.method,
            losses[scored],
            None if feats is None else feats[scored],
            m,
            generator=selection_generator(cfg.selection_seed, step),
            **options,
        )
        kept = torch.cat([forced.nonzero().flatten(), scored[sel.indices]])
        weights = None
        if sel.weights is not None:
            weights = torch.cat([torch.ones(int(forced.sum())), sel.weights])
        strata = None
        if sel.strata is not None:
            strata = torch.cat([torch.full((int(forced.sum()),), -1), sel.kept_strata])
        order = torch.argsort(kept)
        kept = kept[order]
        weights = None if weights is None else weights[order]
        strata = None if strata is None else strata[order]
        info = {
            k_: (v.tolist() if isinstance(v, torch.Tensor) else v) for k_, v in sel.info.items()
        }
        info["forced_unscored"] = int(forced.sum())
        return kept, weights, strata, info

    def _log(self, step, epoch, ids, kept, strata, losses, scored, how, info) -> None:
        """One JSON line: what was seen and kept; losses over the rows that have a score."""
        v = scored.nonzero().flatten()
        if kept is not None:
            kept_scored = kept[scored[kept]]
        rec = {
            "step": step,
            "epoch": epoch,
            "seen": int(ids.numel()),
            "kept": int(ids.numel() if kept is None else kept.numel()),
            "loss_window": float(losses[v].mean()) if v.numel() else None,
            "loss_kept": (
                float(losses[v if kept is None else kept_scored].mean())
                if v.numel() and (kept is None or kept_scored.numel())
                else None
            ),
            "scoring": self.config.scoring,
            "features": how,
            "seen_ids": ids.tolist(),
            "seen_losses": [round(float(x), 5) if ok else None for x, ok in zip(losses, scored)],
            "kept_ids": (ids if kept is None else ids[kept]).tolist(),
            "kept_strata": None if strata is None else strata.tolist(),
            **{k: v_ for k, v_ in info.items() if k != "method"},
        }
        self.last_record = rec
        iv = self._interval
        iv["seen"] += rec["seen"]
        iv["kept"] += rec["kept"]
        if rec["loss_window"] is not None and rec["loss_kept"] is not None:
            iv["windows"] += 1
            iv["loss_window"] += rec["loss_window"]
            iv["loss_kept"] += rec["loss_kept"]
        if self.log_path and self.config.selection_log and dist.is_main_process():
            append_record(self.log_path, rec)

    def pop_interval_stats(self) -> dict:
        """Kept share and mean window / kept losses since the last call (for the trainer log:
        its own ``loss`` is the kept rows' only, biased high under loss-based selection)."""
        iv, self._interval = self._interval, self._new_interval()
        out = {"slap_kept_share": round(iv["kept"] / iv["seen"], 4) if iv["seen"] else None}
        if iv["windows"]:
            out["slap_loss_window"] = round(iv["loss_window"] / iv["windows"], 4)
            out["slap_loss_kept"] = round(iv["loss_kept"] / iv["windows"], 4)
        return out

    @staticmethod
    def _new_interval() -> dict:
        return {"seen": 0, "kept": 0, "windows": 0, "loss_window": 0.0, "loss_kept": 0.0}

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


__all__ = [
    "ID_KEY",
    "MODEL_INPUT_KEYS",
    "ROW_KEYS",
    "WEIGHT_KEY",
    "SelectionEngine",
    "model_inputs",
    "selection_generator",
]
