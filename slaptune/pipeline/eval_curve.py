"""Eval loss during training at fixed shares of full-data compute, overall and by difficulty.

A pruned run is only better than full data if it is better *at the same compute*, and final-epoch
loss alone misleads both ways (full data overfits late; a pruned run "wins" by training less).
:class:`EvalCurve` evaluates the held-out rows each time the run's FLOPs (training plus scoring,
read from the engine's ledger) cross the next multiple of ``every`` times the full-data run's
FLOPs, and once more at the end. Each point also has the loss on the easy / middle / hard third
of the eval examples, the thirds fixed by the *base* model's per-example loss, because the
token-mean loss is carried by the easy majority.

>>> tercile_groups([0.5, 3.0, 1.0, 2.0, 0.1, 9.0])
[[4, 0], [2, 3], [1, 5]]
>>> pooled_loss([2.0, 6.0, 3.0], [1, 2, 3], [0, 1])
2.6667
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

from .evaluate import per_example_losses

TERCILES = ("easy", "middle", "hard")


def tercile_groups(example_losses: list[float]) -> list[list[int]]:
    """Example indices split into three near-equal groups by loss, lowest (easy) first."""
    order = sorted(range(len(example_losses)), key=lambda i: (example_losses[i], i))
    n = len(order)
    return [order[: n // 3], order[n // 3 : 2 * n // 3], order[2 * n // 3 :]]


def pooled_loss(sums: list[float], counts: list[int], idx: list[int]) -> float:
    """Token-mean loss over the examples ``idx`` (nan if they hold no supervised token)."""
    tokens = sum(counts[i] for i in idx)
    return round(sum(sums[i] for i in idx) / tokens, 4) if tokens else float("nan")


def full_data_flops(rows: list[dict], epochs: float, ledger) -> float:
    """What the full-data run spends: every training row's tokens, each epoch, at the ledger's
    training cost per token (6P, or 4P with frozen base weights); no scoring."""
    return ledger.train_flops(sum(len(r["input_ids"]) for r in rows) * epochs)


class EvalCurve(TrainerCallback):
    """Records ``curve`` (``flops_fraction``, ``target``, ``step``, ``eval_loss``, ``terciles``).

    ``full_flops`` (or, when it is None, the analytic cost of ``train_rows`` x ``epochs``) is
    the full-data run's FLOPs. ``terciles`` are index lists into ``eval_rows``. ``seconds`` is
    the time spent evaluating, to be taken out of the run's wall-clock.
    """

    def __init__(
        self,
        trainer,
        eval_rows: list[dict],
        terciles: list[list[int]] | None = None,
        full_flops: float | None = None,
        train_rows: list[dict] | None = None,
        epochs: float = 1.0,
        every: float = 0.1,
        pad_id: int = 0,
        batch_size: int = 16,
    ):
        if every <= 0:
            raise ValueError(f"every must be > 0, got {every}")
        self.trainer, self.eval_rows, self.terciles = trainer, eval_rows, terciles
        self.full_flops, self.train_rows, self.epochs = full_flops, train_rows, epochs
        self.every, self.pad_id, self.batch_size = every, pad_id, batch_size
        self.curve: list[dict] = []
        self.last_eval: tuple | None = None  # (step, per-example sums, token counts)
        self.next_target = every
        self.seconds = 0.0

    def _ledger(self):
        return self.trainer.slap_engine.ledger

    def _reference(self) -> float:
        if self.full_flops is None:
            self.full_flops = full_data_flops(self.train_rows or [], self.epochs, self._ledger())
        return self.full_flops

    def evaluate(self, model, fraction: float, target: float | None, step: int) -> dict:
        t0 = time.perf_counter()
        sums, counts = per_example_losses(model, self.eval_rows, self.pad_id, self.batch_size)
        point = {
            "flops_fraction": round(fraction, 4),
            "target": None if target is None else round(target, 4),
            "step": step,
            "eval_loss": pooled_loss(sums, counts, list(range(len(sums)))),
        }
        if self.terciles:
            point["terciles"] = {
                name: pooled_loss(sums, counts, idx) for name, idx in zip(TERCILES, self.terciles)
            }
        self.curve.append(point)
        self.last_eval = (step, sums, counts)  # the run's final eval loss, if it ends here
        self.seconds += time.perf_counter() - t0
        return point

    def _fraction(self) -> float:
        ledger = self._ledger()
        return (ledger.flops_training + ledger.flops_scoring) / self._reference()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        fraction = self._fraction()
        if fraction + 1e-9 >= self.next_target:
            # One point per crossing step, labelled with the highest target it crossed (at the
            # grids used a step spans less than one target).
            while fraction + 1e-9 >= self.next_target + self.every:
                self.next_target += self.every
            target, self.next_target = self.next_target, self.next_target + self.every
            self.evaluate(model or self.trainer.model, fraction, target, state.global_step)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.curve or self.curve[-1]["step"] != state.global_step:
            self.evaluate(model or self.trainer.model, self._fraction(), None, state.global_step)
        return control

    def summary(self) -> dict:
        """The results.jsonl fields: the curve, its best and final points, final terciles."""
        if not self.curve:
            return {"eval_curve": []}
        best = min(self.curve, key=lambda p: p["eval_loss"])
        final = self.curve[-1]
        return {
            "eval_curve": self.curve,
            "eval_loss_best": best["eval_loss"],
            "best": {k: best[k] for k in ("flops_fraction", "step", "eval_loss")},
            "final": {k: final[k] for k in ("flops_fraction", "step", "eval_loss")},
            "eval_loss_terciles": final.get("terciles"),
            "time_eval_curve_s": round(self.seconds, 3),
        }
