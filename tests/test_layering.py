"""Dependencies point one way: select <- score <- engine <- integrations <- pipeline <- cli.

Imports are resolved to real module names with ``ast`` (``from .. import engine`` inside
``slaptune.integrations.hf`` is ``slaptune.engine``), so no relative spelling hides an arrow.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "slaptune"
BENCH = ROOT.parent / "benchmarks"
HF = {"transformers", "trl", "peft", "accelerate", "datasets", "deepspeed", "tokenizers"}

# Rank of each top-level node of the package: a module may import its own node or lower ranks.
LAYERS = {
    "files": 0,
    "select": 0,
    "score": 1,
    "config": 1,
    "data": 2,
    "engine": 2,
    "models": 3,
    "integrations": 3,
    "pipeline": 4,
    "cli": 5,
    "__main__": 6,
}
# What the pure layers may import from outside the package.
SELECT_EXTERNAL = {"torch", "__future__", "inspect", "collections", "dataclasses", "math"}


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolved_imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of everything ``source`` (the text of ``module``) imports; for
    ``from X import name`` both ``X`` and ``X.name`` (``name`` may be a submodule)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def node_of(name: str) -> str | None:
    """The top-level node of the package a module name belongs to (None: not ours)."""
    parts = name.split(".")
    if parts[0] != "slaptune":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def layering_violations(source: str, module: str, is_package: bool = False) -> list[str]:
    here = node_of(module)
    bad = []
    for imp in resolved_imports(source, module, is_package):
        there = node_of(imp)
        if there is None or there == here or here == "__init__":
            continue
        if there not in LAYERS:  # the package root, or a name it exports (``__version__``)
            continue
        if here not in LAYERS or LAYERS[there] >= LAYERS[here]:
            bad.append(f"{module} imports {imp} ({here} -> {there})")
    return bad


def package_files():
    return sorted(ROOT.rglob("*.py"))


def test_every_top_level_node_has_a_layer():
    nodes = {
        p.stem if p.is_file() else p.name
        for p in ROOT.iterdir()
        if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert nodes - {"__init__"} <= set(LAYERS), nodes - set(LAYERS)


def test_dependencies_point_one_way():
    bad = []
    for f in package_files():
        bad += layering_violations(f.read_text(), module_name(f), f.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("slaptune.engine.window", "from ..integrations import hf\n"),
        ("slaptune.integrations.hf", "from .. import pipeline\n"),
        ("slaptune.score.head", "from ..engine import rows\n"),
        ("slaptune.select.methods", "import slaptune.score\n"),
        ("slaptune.engine.rows", "from .. import cli\n"),
    ],
)
def test_the_check_catches_an_import_pointing_up(module, source):
    assert layering_violations(source, module), source


def test_the_check_resolves_relative_imports():
    assert resolved_imports("from .. import engine\n", "slaptune.integrations.hf") >= {
        "slaptune",
        "slaptune.engine",
    }
    assert "slaptune.engine.rows" in resolved_imports(
        "from .rows import X\n", "slaptune.engine.window"
    )


def test_select_imports_torch_and_stdlib_only():
    for f in (ROOT / "select").rglob("*.py"):
        for name in resolved_imports(f.read_text(), module_name(f), f.name == "__init__.py"):
            top = name.split(".")[0]
            assert top == "slaptune" or top in SELECT_EXTERNAL, (f, name)
            assert top != "slaptune" or node_of(name) == "select", (f, name)


def test_score_and_engine_import_no_framework():
    for sub in ("score", "engine", "select"):
        for f in (ROOT / sub).rglob("*.py"):
            for name in resolved_imports(f.read_text(), module_name(f), f.name == "__init__.py"):
                assert name.split(".")[0] not in HF, (f, name)


def test_only_the_distributed_module_uses_torch_distributed():
    for f in package_files():
        if f == ROOT / "engine" / "distributed.py":
            continue
        names = resolved_imports(f.read_text(), module_name(f))
        assert not any(
            n.startswith("torch.distributed") for n in names if n != "torch.distributed.run"
        ), f
        assert "torch.distributed." not in f.read_text().replace("torch.distributed.run", ""), f


def test_benchmarks_use_public_names_only():
    for f in sorted(BENCH.glob("*.py")):
        for name in resolved_imports(f.read_text(), "benchmarks." + f.stem):
            if name.startswith("slaptune"):
                assert not any(p.startswith("_") for p in name.split(".")), (f, name)


def test_import_slaptune_pulls_in_no_hf_package():
    code = (
        "import sys, slaptune, slaptune.select, slaptune.score, slaptune.engine;"
        f"print(sorted(m for m in {sorted(HF)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_modules_stay_small():
    for f in package_files():
        assert len(f.read_text().splitlines()) <= 420, f
