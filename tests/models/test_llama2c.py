"""``slaptune convert llama2c`` on a small checkpoint and tokenizer written here, and the bad
inputs of issue 12: each a one-line error, exit 2, and no output (nor OUT.partial) left behind."""

import os
import struct

import numpy as np
import pytest

from slaptune.cli.main import main

HEAD = {"dim": 16, "hidden_dim": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "seq_len": 32}
MERGED = ["\u2581a", "\u2581the"]


def tokenizer_bytes() -> bytes:
    pieces = ["<unk>", "\n<s>\n", "\n</s>\n"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [" a", " the", "th", "e"]
    out = [struct.pack("i", 8)]
    for i, p in enumerate(pieces):
        raw = p.encode()
        out.append(struct.pack("fi", -float(i), len(raw)) + raw)
    return b"".join(out), len(pieces)


def write_pair(folder, **header):
    """``(checkpoint, tokenizer)`` paths of a random llama2.c v0 model with shared classifier."""
    tok, vocab = tokenizer_bytes()
    h = {**HEAD, "vocab_size": vocab, **header}
    d, hd, L, v = h["dim"], h["hidden_dim"], h["n_layers"], vocab
    nh = max(h["n_heads"], 1)
    head = d // nh
    n = v * d + L * d * 2 + L * d * d * 4 + L * hd * d * 3 + d + h["seq_len"] * head
    weights = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    fields = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")
    ckpt, tokf = os.path.join(folder, "model.bin"), os.path.join(folder, "tok.bin")
    with open(ckpt, "wb") as f:
        f.write(struct.pack("7i", *(h[k] for k in fields)) + weights.tobytes())
    with open(tokf, "wb") as f:
        f.write(tok)
    return ckpt, tokf


def test_convert_llama2c_writes_a_loadable_folder(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    ckpt, tok = write_pair(tmp_path)
    assert main(["convert", "llama2c", ckpt, tok, str(tmp_path / "out")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert model.config.num_attention_heads == 2
    assert sorted(os.listdir(tmp_path)) == ["model.bin", "out", "tok.bin"]


def _case(kind, tmp_path):
    ckpt, tok = write_pair(tmp_path, **({"n_heads": 0} if kind == "n_heads 0" else {}))
    if kind == "n_kv_heads 3":
        ckpt, tok = write_pair(tmp_path, n_kv_heads=3)
    if kind.startswith("truncated tokenizer"):
        with open(tok, "rb") as f:
            raw = f.read()
        with open(tok, "wb") as f:  # inside the last token's (score, length), or its bytes
            f.write(raw[:-3] if kind == "truncated tokenizer" else raw[:-1])
    if kind == "truncated checkpoint":
        with open(ckpt, "rb") as f:
            raw = f.read()
        with open(ckpt, "wb") as f:
            f.write(raw[:-100])
    if kind == "checkpoint is a folder":
        ckpt = str(tmp_path)
    if kind == "tokenizer is a folder":
        tok = str(tmp_path)
    if kind == "output exists":
        (tmp_path / "out").mkdir()
    return ckpt, tok


@pytest.mark.parametrize(
    "kind, message",
    [
        ("n_heads 0", "header field(s) n_heads not positive"),
        ("n_kv_heads 3", "do not fit"),
        ("truncated tokenizer", "tok.bin: ends inside the header of token 262; truncated?"),
        ("truncated tokenizer piece", "tok.bin: token 262 claims 1 bytes but the file ends"),
        ("truncated checkpoint", "file ends inside"),
        ("checkpoint is a folder", "is a folder; give the llama2.c checkpoint file itself"),
        ("tokenizer is a folder", "is a folder; give the llama2.c tokenizer file itself"),
        ("output exists", "out exists; choose a new output folder"),
    ],
)
def test_bad_llama2c_input_gets_one_line_and_no_output(kind, message, tmp_path, capsys):
    ckpt, tok = _case(kind, tmp_path)
    before = set(os.listdir(tmp_path))
    assert main(["convert", "llama2c", ckpt, tok, str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slaptune: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before  # nothing written, no out.partial*


def test_a_leftover_partial_folder_does_not_leak_into_the_output(tmp_path, capsys):
    ckpt, tok = write_pair(tmp_path)
    stale = tmp_path / "out.partial"
    stale.mkdir()
    (stale / "junk.txt").write_text("from a killed run")
    assert main(["convert", "llama2c", ckpt, tok, str(tmp_path / "out")]) == 0
    assert "junk.txt" not in os.listdir(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["model.bin", "out", "out.partial", "tok.bin"]
