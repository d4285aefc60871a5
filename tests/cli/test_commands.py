"""Every command's happy path on tiny inputs, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import pytest

from slaptune.cli.main import build_parser, main
from slaptune.cli.options import resolve
from slaptune.pipeline.run_config import RunConfig
from slaptune.pipeline.train import SUMMARY_KEYS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("SLAPTUNE_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
STORIES = os.path.join(SHARED, "tinyllamas-stories260K")
GREEDY = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in "
    "the park. One day, she saw a big, red ball."
)


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


def qa_records(n=48):
    return [{"question": f"What is {i} plus {i % 5}?", "answer": str(i + i % 5)} for i in range(n)]


TINY = [
    "--model",
    "llama-tiny",
    "--data-format",
    "qa",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--grad-accum",
    "2",
    "--eval-size",
    "8",
    "--eval-generate",
    "4",
    "--max-new-tokens",
    "4",
    "--tokenizer-vocab",
    "300",
    "--max-length",
    "64",
    "--no-progress",
    "--logging-steps",
    "2",
]


def test_every_command_has_help(capsys):
    for cmd in ("train", "eval", "generate", "convert", "check-data", "demo", "bench"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: slaptune" in capsys.readouterr().out


def test_python_dash_m_works_like_the_script():
    out = subprocess.run(
        [sys.executable, "-m", "slaptune", "--version"], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0 and out.stdout.startswith("slaptune ")


def test_yaml_and_flags_resolve_to_the_same_config(tmp_path):
    flags = [
        "--method",
        "ccs",
        "--keep-ratio",
        "0.6",
        "--data",
        "a.jsonl",
        "b.jsonl",
        "--num-strata",
        "3",
        "--lora",
        "--epochs",
        "2",
    ]
    cfg_flags = resolve(RunConfig, build_parser().parse_args(["train", *flags]))
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(
        "method: ccs\nkeep_ratio: 0.6\ndata: [a.jsonl, b.jsonl]\n"
        "num_strata: 3\nlora: true\nepochs: 2\n"
    )
    cfg_yaml = resolve(RunConfig, build_parser().parse_args(["train", "--config", str(yaml_path)]))
    assert cfg_flags == cfg_yaml
    # A flag given on the command line wins over the YAML.
    both = resolve(
        RunConfig,
        build_parser().parse_args(["train", "--config", str(yaml_path), "--keep-ratio", "0.8"]),
    )
    assert both.keep_ratio == 0.8 and both.method == "ccs"


def test_yaml_with_unknown_key_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("keep_ration: 0.7\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) ['keep_ration']" in err and "Traceback" not in err


def test_train_eval_generate_happy_path(tmp_path, capsys):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    out = tmp_path / "run"
    assert (
        main(["train", "--data", data, "--output-dir", str(out), "--keep-ratio", "0.5", *TINY]) == 0
    )
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "run_config.yaml",
        "metrics.json",
        "selection.jsonl",
        "plots/loss.png",
        "plots/kept_losses.png",
    ):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in SUMMARY_KEYS:  # compute side by side with quality, every one filled in
        assert metrics[key] is not None, key
    assert metrics["samples_trained"] == metrics["samples_seen"] // 2
    rec = json.loads((out / "selection.jsonl").read_text().splitlines()[0])
    assert {"step", "kept_ids", "kept_strata"} <= set(rec)
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(out),
                "--data",
                data,
                "--data-format",
                "qa",
                "--generate",
                "3",
                "--max-new-tokens",
                "3",
                "--max-examples",
                "6",
                "--no-progress",
                "--output",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["examples"] == 6 and "qa/exact_match" in result and result["eval_loss"] > 0
    assert (
        main(
            [
                "generate",
                str(out),
                "--chat",
                "What is 1 plus 1?",
                "--greedy",
                "--max-new-tokens",
                "3",
            ]
        )
        == 0
    )
    # An existing run is not overwritten; --resume continues it from its last checkpoint.
    assert main(["train", "--data", data, "--output-dir", str(out), *TINY]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--data",
                data,
                "--output-dir",
                str(out),
                "--keep-ratio",
                "0.5",
                "--resume",
                *TINY,
            ]
        )
        == 0
    )


BAD_CASES = [
    ('{"question": "q", "answer": "a"', "malformed JSON"),
    ({"question": "q"}, "missing field 'answer'"),
    ({"question": "  ", "answer": "a"}, "field 'question' is empty"),
    ({"question": "q", "answer": "a", "id": "x"}, "duplicate id 'x'"),
]


def test_check_data_reports_every_problem_with_file_and_line(tmp_path, capsys):
    records = [{"question": "ok", "answer": "fine", "id": "x"}] + [c for c, _ in BAD_CASES]
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with open(path, "ab") as f:
        f.write(b'{"question": "caf\xe9", "answer": "a"}\n')
    assert main(["check-data", path, "--data-format", "qa"]) == 2
    out, err = capsys.readouterr()
    for line, (_, message) in enumerate(BAD_CASES, start=2):
        assert f"{path}:{line}: {message}" in out
    assert f"{path}:6: not valid UTF-8" in out
    assert err.startswith("slaptune: error: 5 problem(s)") and "Traceback" not in err


def test_check_data_dialogue_problems(tmp_path, capsys):
    recs = [
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ]
        },
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        {
            "conversations": [
                {"from": "system", "value": "be nice"},
                {"from": "human", "value": "hi"},
                {"from": "gpt", "value": "hello"},
            ]
        },
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", recs)
    assert main(["check-data", path, "--data-format", "messages"]) == 2
    out = capsys.readouterr().out
    assert f"{path}:2: dialogue ends without an assistant turn" in out
    assert f"{path}:3: turn 0 has unknown role 'wizard'" in out
    assert out.count(path) == 2  # lines 1 and 4 are fine (ShareGPT with a system prompt)


def test_check_data_flags_nothing_supervised_after_truncation(tmp_path, capsys):
    path = write_jsonl(
        tmp_path / "long.jsonl",
        [{"question": "word " * 50, "answer": "a"}, {"question": "short", "answer": "b"}],
    )
    assert (
        main(
            [
                "check-data",
                path,
                "--data-format",
                "qa",
                "--model",
                "llama-tiny",
                "--max-length",
                "16",
            ]
        )
        == 2
    )
    assert f"{path}:1: nothing supervised left after truncation" in capsys.readouterr().out


def test_train_refuses_bad_data_without_traceback_or_output(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", qa_records(40) + [{"question": "q"}])
    out = tmp_path / "never"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "slaptune",
            "train",
            "--data",
            path,
            "--output-dir",
            str(out),
            *TINY,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("slaptune: error: 1 bad record(s)")
    assert f"{path}:41: missing field 'answer'" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_train_can_skip_and_count_bad_records(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", qa_records(40) + [{"question": "q"}])
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                path,
                "--output-dir",
                str(out),
                "--skip-bad-records",
                "--method",
                "random",
                *TINY,
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["records_skipped"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "nope.jsonl"], "nope.jsonl: no such file"),
        (["train", "--data", "x.jsonl", "--keep-ratio", "1.5"], "keep_ratio must be in (0, 1]"),
        (["train", "--data", "x.jsonl", "--method", "magic"], "method must be one of"),
        (["train", "--data", "x.jsonl", "--model", "llama-3b"], "neither a folder nor a preset"),
        (["eval", "nowhere", "--data", "x.jsonl", "--data-format", "qa"], "not a model folder"),
        (["convert", "llama2c", "a.bin", "b.bin", "out"], "a.bin: no such file"),
    ],
)
def test_bad_invocations_get_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "x.jsonl", qa_records(40))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err.splitlines()[0] and "Traceback" not in err


@pytest.mark.skipif(not os.path.exists(STORIES), reason="shared stories260K not present")
def test_convert_llama2c_reproduces_the_greedy_sample(tmp_path, capsys):
    out = tmp_path / "stories"
    assert (
        main(
            [
                "convert",
                "llama2c",
                os.path.join(STORIES, "stories260K.bin"),
                os.path.join(STORIES, "tok512.bin"),
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "", "--max-new-tokens", "60", "--greedy"]) == 0
    assert capsys.readouterr().out.startswith(GREEDY)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    text = "Hello wörld, 中文!"
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text


def test_demo_runs_end_to_end_on_a_tiny_setting(tmp_path, capsys, monkeypatch):
    # As the README types it: no --output-dir, so runs/demo under the working folder.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "demo"
    assert (
        main(
            [
                "demo",
                "--model",
                "llama-tiny",
                "--n-train",
                "160",
                "--epochs",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    for run in ("full", "slap-fresh", "slap-reuse", "random"):
        assert f"| {run} |" in report
    assert (out / "comparison.png").exists()
