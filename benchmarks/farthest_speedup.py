"""Blocked farthest-point selection against the previous one-pick-at-a-time version, same run.

The previous ``slaptune/select/farthest.py`` is read from git (commit 8a9c113) into a temporary
folder; both run on the same unit-length Gaussian pools, one thread, medians of 3.

    python benchmarks/farthest_speedup.py
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from slaptune.select import farthest as blocked  # noqa: F401  (module, not the function)

PREVIOUS = "8a9c113"


def previous_module():
    src = subprocess.run(
        ["git", "show", f"{PREVIOUS}:slaptune/select/farthest.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = os.path.join(tempfile.mkdtemp(), "previous_farthest.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("previous_farthest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    torch.set_num_threads(1)
    new = sys.modules["slaptune.select.farthest"]
    old = previous_module()
    print("| N | d | k | previous | blocked | speed-up | same picks |")
    print("|---|---|---|---|---|---|---|")
    for n, d, k in [(512, 1024, 358), (2048, 1024, 1434), (8192, 1024, 5734)]:
        g = torch.Generator().manual_seed(0)
        x = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
        sq, members = (x * x).sum(1), torch.arange(n)
        times = {"old": [], "new": []}
        picks = {}
        for _ in range(3):
            for name, mod in (("old", old), ("new", new)):
                t0 = time.perf_counter()
                gen = torch.Generator().manual_seed(1)
                picks[name] = mod.farthest_point_in_group(x, sq, members, k, [], gen)
                times[name].append(time.perf_counter() - t0)
        a, b = (statistics.median(times[m]) for m in ("old", "new"))
        same = bool(torch.equal(picks["old"], picks["new"]))
        print(f"| {n} | {d} | {k} | {a * 1e3:.0f} ms | {b * 1e3:.0f} ms | {a / b:.1f}x | {same} |")


if __name__ == "__main__":
    main()
