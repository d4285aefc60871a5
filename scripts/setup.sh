#!/usr/bin/env bash
# One-time set-up on a fresh machine: a venv in .venv with torch 2.13.0 (CPU) installed FIRST
# (an unpinned torch pulled in by accelerate/peft would fetch a multi-GB CUDA build), then
# slaptune with every extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[all]"
