"""The README as a new user reads it: its two set-up commands are the ones CI runs, the demo
command works from a fresh folder, and every Python snippet is an exact excerpt of a tested
example script (or runs as it stands)."""

import contextlib
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_commands_are_the_ones_ci_and_the_tests_run():
    demo, tests = commands(blocks("bash")[0])
    assert demo == "bash scripts/setup.sh && .venv/bin/slaptune demo"
    assert tests == "bash scripts/setup.sh && .venv/bin/python -m pytest -q"
    ci = commands((ROOT / ".ci" / "run").read_text())
    assert ci[-1] == tests, "CI must run the README's test command as typed"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'slaptune = "slaptune.cli.main:main"' in pyproject  # .venv/bin/slaptune
    from slaptune.cli.main import build_parser

    args = build_parser().parse_args(["demo"])  # the demo needs no argument
    assert args.output_dir is None and args.model == "llama-5m"


def excerpt_source(block: str) -> Path | None:
    first = block.splitlines()[0]
    m = re.fullmatch(r"# (examples/\w+\.py)", first.strip())
    return ROOT / m.group(1) if m else None


PY_BLOCKS = blocks("python")


def test_readme_has_an_excerpt_of_every_example_script():
    cited = {excerpt_source(b) for b in PY_BLOCKS} - {None}
    wanted = ("hf_trainer.py", "trl_lora.py", "plain_pytorch.py")
    assert cited >= {ROOT / "examples" / n for n in wanted}
    for script in (ROOT / "examples").glob("*.py"):
        assert f"examples/{script.name}" in README, f"{script.name} is not in the README"


@pytest.mark.parametrize("block", PY_BLOCKS, ids=[b.splitlines()[0][:40] for b in PY_BLOCKS])
def test_readme_python_block_is_an_exact_excerpt_or_runs(block):
    source = excerpt_source(block)
    if source is None:  # a stand-alone snippet: it must run as printed, and print what it says
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
        said = [ln.split("  # ", 1)[1] for ln in block.splitlines() if ln.startswith("print(")]
        assert said and all(s in out.getvalue() for s in said), (said, out.getvalue())
        return
    body = textwrap.dedent("\n".join(block.splitlines()[1:])).rstrip("\n")
    text = source.read_text(encoding="utf-8")
    for indent in ("", "    ", "        "):
        shifted = "\n".join(indent + ln if ln else ln for ln in body.splitlines())
        if shifted in text:
            return
    pytest.fail(f"this README block is not a verbatim excerpt of {source.name}:\n{body}")


@pytest.mark.slow
def test_readme_demo_command_as_typed_then_again_in_the_same_folder(tmp_path):
    """``slaptune demo`` with its defaults from a fresh folder (minutes on 2 cores), then a tiny
    second run there: it must go to runs/demo-2 and leave runs/demo alone."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    demo = [sys.executable, "-m", "slaptune", "demo"]
    first = subprocess.run(demo, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    report = (tmp_path / "runs" / "demo" / "report.md").read_text()
    for run in ("full", "slap-fresh", "slap-reuse", "random"):
        assert f"| {run} |" in report
    assert "| process CPU s | CPU / full |" in report
    assert "Wall-clock ratios on a shared machine" in report
    assert (tmp_path / "runs" / "demo" / "comparison.png").stat().st_size > 10_000
    before = sorted(p.name for p in (tmp_path / "runs" / "demo").iterdir())
    tiny = ["--model", "llama-tiny", "--n-train", "96", "--epochs", "1", "--no-progress"]
    second = subprocess.run(demo + tiny, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "runs" / "demo-2" / "report.md").exists()
    assert sorted(p.name for p in (tmp_path / "runs" / "demo").iterdir()) == before
