"""Dependencies point one way: select <- score <- engine <- integrations <- cli."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "slaptune"
HF = {"transformers", "trl", "peft", "accelerate", "datasets", "deepspeed", "tokenizers"}


def imports_of(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            names.add(("." * node.level) + mod)
    return names


def files(sub: str):
    return sorted((ROOT / sub).rglob("*.py")) if (ROOT / sub).is_dir() else [ROOT / sub]


def test_select_imports_torch_and_stdlib_only():
    for f in files("select"):
        for name in imports_of(f):
            top = name.split(".")[0]
            assert name.startswith(".") or top in {
                "torch",
                "__future__",
                "inspect",
                "collections",
                "dataclasses",
                "math",
            }, (f, name)
            assert "distributed" not in name, (f, name)


def test_score_has_no_hf_or_distributed_import():
    for f in files("score"):
        for name in imports_of(f):
            assert name.split(".")[0] not in HF and "distributed" not in name, (f, name)
            assert not name.startswith("..") or name.startswith("..select"), (f, name)


def test_only_distributed_module_uses_torch_distributed():
    for f in ROOT.rglob("*.py"):
        if f.name == "distributed.py":
            continue
        src = f.read_text()
        assert "torch.distributed" not in src.replace("torch.distributed.run", ""), f


def test_core_modules_do_not_import_frameworks_or_cli():
    core = [
        "engine.py",
        "batching.py",
        "state.py",
        "accounting.py",
        "config.py",
        "indexing.py",
        "distributed.py",
    ]
    for name in core:
        for imp in imports_of(ROOT / name):
            top = imp.lstrip(".").split(".")[0]
            assert top not in HF and top not in {"integrations", "cli"}, (name, imp)


def test_lower_layers_never_import_upper_ones():
    for f in list(files("select")) + list(files("score")):
        for imp in imports_of(f):
            assert "integrations" not in imp and "cli" not in imp and "engine" not in imp, (f, imp)
    for f in files("integrations"):
        for imp in imports_of(f):
            assert "cli" not in imp, (f, imp)


def test_import_slaptune_pulls_in_no_hf_package():
    code = (
        "import sys, slaptune, slaptune.select, slaptune.score, slaptune.engine;"
        f"print(sorted(m for m in {sorted(HF)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_modules_stay_small():
    for f in ROOT.rglob("*.py"):
        assert len(f.read_text().splitlines()) <= 420, f
