"""Run a replication suite: prepare the shared data and the pretrained model, then one
``slaptune bench`` grid per task family. Resumable: finished cells are never re-run.

    python benchmarks/run_suite.py --suite quick          # <= 15 min on 2 CPU cores
    python benchmarks/run_suite.py --suite full           # the replication (hours)
    python benchmarks/run_suite.py --suite quick --model glm-1m   # a second architecture
    python benchmarks/run_suite.py --suite protocol-quick        # the protocol, a few minutes
    python benchmarks/run_suite.py --suite realistic --smoke      # SmolLM2 end-to-end, minutes

Outputs: ``<out>/<task>/report.md`` with plots, and ``<out>/summary.md`` across tasks.

A task named ``<task>_<pool>`` (e.g. ``rolebench_filler50``) is a controlled-redundancy pool
built by ``prepare_data.py --pools`` from ``<task>``'s train split (made here when missing). A
``max_length: whole95`` is replaced by the length at which >= 95% of the base task's examples
fit whole (``prepare_data.py --lengths``, cached in ``<data>/lengths.json``). A suite's top-level
``eval_examples: N`` evaluates on the first N examples of each task's eval file (quick suites);
``eval_every`` is passed to the bench (eval-curve spacing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def fill(value, data: str, models: str):
    if isinstance(value, str):
        return value.replace("{data}", data).replace("{models}", models)
    if isinstance(value, list):
        return [fill(v, data, models) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, data, models) for k, v in value.items()}
    return value


def base_task(task: str) -> str:
    """``rolebench_filler50`` -> ``rolebench``: the clean task a pool is built from."""
    for kind in ("_filler", "_dup", "_noise"):
        if kind in task:
            return task[: task.index(kind)]
    return task


def ensure_inputs(
    data_root: str, data: str, models: str, tasks: list[str], model: str | None = None
) -> None:
    """Convert stories260K once (and fetch and convert the suite's ``prepare_model``, e.g.
    smollm2-135m-instruct, once); prepare the splits, pools and lengths not made yet."""
    convert_model(data_root, models)
    if model and not os.path.exists(os.path.join(models, model, "config.json")):
        script = os.path.join(HERE, "prepare_model.py")
        subprocess.run(
            [sys.executable, script, model, "--out", os.path.join(models, model)], check=True
        )
    stories = os.path.join(models, "stories260K")
    bases = sorted({base_task(t) for t in tasks})
    missing = [t for t in bases if not os.path.exists(os.path.join(data, t, "test.jsonl"))]
    if missing:
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "prepare_data.py"),
                "--data-root",
                data_root,
                "--out",
                data,
                "--tasks",
                ",".join(missing),
            ],
            check=True,
        )
    pools = sorted(
        {
            base_task(t)
            for t in tasks
            if t != base_task(t) and not os.path.exists(os.path.join(data, t, "train.jsonl"))
        }
    )
    script = [sys.executable, os.path.join(HERE, "prepare_data.py"), "--out", data]
    if pools:
        subprocess.run([*script, "--pools", ",".join(pools), "--model", stories], check=True)
    lengths = {}
    path = os.path.join(data, "lengths.json")
    if os.path.exists(path):
        with open(path) as f:
            lengths = json.load(f)
    todo = [t for t in bases if t not in lengths]
    if todo:
        subprocess.run(
            [*script, "--lengths", "--tasks", ",".join(todo), "--model", stories], check=True
        )


def task_spec(suite: dict, task: str, out: str, lengths: dict, model: str | None) -> dict:
    """The bench grid (base, grid, extra, eval_every) of one suite task."""
    opts = dict(suite["tasks"][task])
    # A task may narrow the grid (e.g. a costly task runs one keep ratio).
    grid, extra = opts.pop("grid", suite["grid"]), opts.pop("extra", suite.get("extra", []))
    base = {**suite["common"], **opts, **({"model": model} if model else {})}
    if suite.get("eval_examples"):  # the first N eval examples (a quick suite's budget)
        base["eval_data"] = [head_copy(base["eval_data"], suite["eval_examples"], out, task)]
    if base.get("max_length") == "whole95":
        base["max_length"] = lengths[base_task(task)]["whole95"]
    spec = {"base": base, "grid": grid, "extra": extra}
    if "eval_every" in suite:
        spec["eval_every"] = suite["eval_every"]
    return spec


def head_copy(paths: list[str], n: int, out: str, task: str) -> str:
    """The first ``n`` lines of ``paths`` as one JSONL file under ``out/task``."""
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            lines += [x for x in f if x.strip()]
    target = os.path.join(out, task, f"eval_first{n}.jsonl")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        f.writelines(lines[:n])
    return target


def convert_model(data_root: str, models: str) -> None:
    stories = os.path.join(models, "stories260K")
    if not os.path.exists(stories):
        src = os.path.join(data_root, "tinyllamas-stories260K")
        os.makedirs(models, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "slaptune",
                "convert",
                "llama2c",
                os.path.join(src, "stories260K.bin"),
                os.path.join(src, "tok512.bin"),
                stories,
            ],
            check=True,
        )


def main() -> None:
    from slaptune.pipeline.bench import run_bench

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--suite", default="quick", help="quick, full, or a suite YAML path")
    p.add_argument("--data-root", default=os.path.join("..", "shared", "data"))
    p.add_argument("--out", default=None, help="default: runs/suite-<name>")
    p.add_argument("--model", default=None, help="override the suite's model (e.g. glm-1m)")
    p.add_argument("--tasks", default="all", help="comma-separated task names of the suite")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; 1 lets two suite processes share 2 cores (~1.5x throughput here)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="end-to-end check in minutes: 16 examples per task, full / slap fresh / slap reuse "
        "at keep 0.5, seed 0, 4 generations, eval split off the training data",
    )
    a = p.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    path = a.suite if a.suite.endswith(".yaml") else os.path.join(HERE, "suites", f"{a.suite}.yaml")
    name = os.path.splitext(os.path.basename(path))[0]
    if a.smoke:
        name += "-smoke"
    out = a.out or os.path.join("runs", f"suite-{name}" + (f"-{a.model}" if a.model else ""))
    data, models = os.path.join("runs", "data"), os.path.join("runs", "models")
    with open(path) as f:
        suite = fill(yaml.safe_load(f), data, models)
    if a.smoke:
        suite = smoke(suite)
    chosen = [t for t in suite["tasks"] if a.tasks == "all" or t in a.tasks.split(",")]
    ensure_inputs(a.data_root, data, models, chosen, suite.get("prepare_model"))
    t0 = time.perf_counter()
    for task in chosen:
        lengths = {}
        if os.path.exists(os.path.join(data, "lengths.json")):
            with open(os.path.join(data, "lengths.json")) as f:
                lengths = json.load(f)
        spec = task_spec(suite, task, out, lengths, a.model)
        folder = os.path.join(out, task)
        os.makedirs(folder, exist_ok=True)
        grid_file = os.path.join(folder, "grid.yaml")
        with open(grid_file, "w") as f:
            yaml.safe_dump(
                spec,
                f,
                sort_keys=False,
            )
        started = time.perf_counter()
        run_bench(grid_file, folder)
        # Seconds spent on this task, summed over resumed invocations.
        timing = os.path.join(folder, "suite_time.txt")
        before = 0.0
        if os.path.exists(timing):
            with open(timing) as f:
                before = float(f.read())
        with open(timing, "w") as f:
            f.write(f"{before + time.perf_counter() - started:.0f}\n")
    print(f"this process: {time.perf_counter() - t0:.0f} s")
    write_summary(out, name, list(suite["tasks"]))


def smoke(suite: dict) -> dict:
    """The same suite cut to a few minutes: tiny data, three cells, few generations."""
    small = {"max_train_examples": 16, "eval_size": 8, "eval_generate": 4, "max_new_tokens": 8}
    tasks = {}
    for name, opts in suite["tasks"].items():
        opts = {k: v for k, v in opts.items() if k not in ("grid", "extra", "eval_data")}
        tasks[name] = {**opts, **small}
    return {
        **suite,
        "common": {**suite["common"], **small},
        "tasks": tasks,
        "grid": {"method": ["full", "slap"], "keep_ratio": [0.5], "seed": [0]},
        "extra": [{"method": "slap", "scoring": "reuse", "keep_ratio": 0.5, "seed": 0}],
    }


def write_summary(out: str, name: str, tasks: list[str]) -> None:
    """List every task of the suite finished in ``out``, also by other (parallel) processes."""
    lines = [f"# Suite `{name}`", ""]
    for task in tasks:
        timing = os.path.join(out, task, "suite_time.txt")
        if os.path.exists(timing):
            with open(timing) as f:
                seconds = f.read().strip()
            lines.append(f"- {task}: [report]({task}/report.md), {seconds} s")
        else:
            lines.append(f"- {task}: not run (or still running)")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
