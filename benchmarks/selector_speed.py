"""Time of ``slaptune.select.select`` per method, pool size N and feature width d, one thread.

One cell:   python benchmarks/selector_speed.py --n 512 --d 1024 --strata 5 --keep 0.7 --method slap
The table:  python benchmarks/selector_speed.py --table  (N in 64..8192, d in 256..4096, K=5, 0.7)

Prints, as its last line, ``median_ms=<number>`` (the last cell for --table).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from slaptune.select import get_spec, method_names, select

NS = (64, 256, 512, 1024, 4096, 8192)
DS = (256, 1024, 4096)


def time_cell(
    method: str, n: int, d: int, strata: int, keep: float, repeats: int, distance_dim: int = 0
) -> float:
    g = torch.Generator().manual_seed(0)
    losses, feats = torch.rand(n, generator=g) * 4, torch.randn(n, d, generator=g)
    opts = {"num_strata": strata} if "num_strata" in get_spec(method).options else {}
    if distance_dim:
        opts["distance_dim"] = distance_dim
    budget = round(keep * n)
    select(method, losses, feats, budget, generator=g, **opts)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        select(method, losses, feats, budget, generator=g, **opts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--strata", type=int, default=5)
    p.add_argument("--keep", type=float, default=0.7)
    p.add_argument("--method", default="slap", choices=method_names())
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--distance-dim", type=int, default=0, help="slap/kcenter: 0 = exact")
    p.add_argument("--table", action="store_true", help="all N x d cells for slap and kcenter")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if not a.table:
        ms = time_cell(a.method, a.n, a.d, a.strata, a.keep, a.repeats, a.distance_dim)
        print(f"median_ms={ms:.2f}")
        return
    methods = ("slap", "kcenter", "random", "hard", "ccs", "infobatch", "selective_backprop")
    print("| method | d | " + " | ".join(f"N={n}" for n in NS) + " |")
    print("|---|---|" + "---|" * len(NS))
    last = 0.0
    for method in methods:
        for d in DS if method in ("slap", "kcenter") else (DS[0],):
            cells = []
            for n in NS:
                last = time_cell(method, n, d, a.strata, a.keep, 3 if n * d > 4e6 else a.repeats)
                cells.append(f"{last:.2f}")
            print(f"| {method} | {d} | " + " | ".join(cells) + " |", flush=True)
    print(f"median_ms={last:.2f}")


if __name__ == "__main__":
    main()
