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
from tests.shared import REPO, STORIES, TINY, qa_records, write_jsonl

GREEDY = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside in "
    "the park. One day, she saw a big, red ball."
)


def test_every_command_has_help(capsys):
    for cmd in ("train", "eval", "generate", "export", "convert", "check-data", "demo", "bench"):
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


def _subparsers(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_option_of_every_command_has_help_and_default():
    import argparse

    missing = []
    for path, sub in _subparsers(build_parser()):
        for a in sub._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(a.option_strings) or a.dest
            if not a.help:
                # convert's positionals belong to another module (issue 12: convert owner)
                if not (path[0] == "convert" and not a.option_strings):
                    missing.append(f"{' '.join(path)} {name}: no help")
            elif a.option_strings and not a.required and "default" not in a.help.lower():
                missing.append(f"{' '.join(path)} {name}: no default in help")
    assert missing == []


def test_train_help_is_grouped_model_first(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    titles = ["model options", "data options", "training options", "LoRA options",
              "selection options", "output options"]  # fmt: skip
    positions = [out.index(f"\n{t}:") for t in titles]
    assert positions == sorted(positions)
    assert out.index("--model") < out.index("--data ") < out.index("--method")
    new = "--columns --dataset-name --chat-template --trust-remote-code --online --report-to"
    for flag in (*new.split(), "--eval-steps", "--early-stopping-patience"):
        assert flag in out


def test_bench_help_shows_a_grid_example(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "grid:" in out and "method: [full, random, slap]" in out and "base:" in out


def test_new_run_config_fields_from_flags_and_yaml(tmp_path):
    argv = ["train", "--report-to", "tensorboard", "--eval-steps", "5",
            "--early-stopping-patience", "2"]  # fmt: skip
    cfg = resolve(RunConfig, build_parser().parse_args(argv))
    assert (cfg.report_to, cfg.eval_steps, cfg.early_stopping_patience) == (["tensorboard"], 5, 2)
    y = tmp_path / "r.yaml"
    y.write_text("report_to: wandb\neval_steps: '10'\n")
    cfg = resolve(RunConfig, build_parser().parse_args(["train", "--config", str(y)]))
    assert (cfg.report_to, cfg.eval_steps, cfg.early_stopping_patience) == (["wandb"], 10, 0)
    assert RunConfig().report_to == [] and RunConfig().eval_steps == 0


def _plain_model(folder):
    from slaptune.models.presets import build_model, build_tokenizer

    tok = build_tokenizer()
    model = build_model("llama-tiny", len(tok), seed=0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return tok, model


def test_eval_prints_metrics_last_and_writes_every_sample(tmp_path, capsys):
    _plain_model(tmp_path / "m")
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(8))
    capsys.readouterr()
    argv = ["eval", str(tmp_path / "m"), "--data", data, "--data-format", "qa", "--generate",
            "6", "--max-new-tokens", "2", "--no-progress", "--output",
            str(tmp_path / "res" / "eval.json")]  # fmt: skip
    (tmp_path / "res").mkdir()
    assert main(argv) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.rindex("\n{") :])  # the console ends with the metrics
    assert "eval_loss" in metrics and "samples" not in metrics
    samples_file = tmp_path / "res" / "eval_samples.jsonl"
    assert metrics["samples_file"] == str(samples_file)
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 6 and {"prompt", "prediction", "references"} <= set(samples[0])
    assert out.count("prediction:") == 3  # a preview on the console, the rest in the file
    assert json.loads((tmp_path / "res" / "eval.json").read_text()) == metrics


def test_chat_template_override_by_name_and_file(tmp_path):
    from slaptune.data.formats import Example
    from slaptune.data.tokenize import prompt_text, set_chat_template
    from slaptune.models.presets import build_tokenizer

    tok = build_tokenizer()
    ex = Example([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    set_chat_template(tok, "chatml")
    assert prompt_text(tok, ex) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    path = tmp_path / "t.jinja"
    path.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                    "{% if add_generation_prompt %}[assistant] {% endif %}")  # fmt: skip
    set_chat_template(tok, str(path))
    assert prompt_text(tok, ex) == "[user] hi\n[assistant] "


def test_train_with_mixture_columns_and_chat_template_saves_the_template(tmp_path, capsys):
    a = write_jsonl(
        tmp_path / "rb.jsonl",
        [{"role": "R", "question": f"What is {i}?", "generated": [str(i)]} for i in range(24)],
    )
    b = write_jsonl(tmp_path / "qa.jsonl", qa_records(24))
    conf = tmp_path / "run.yaml"
    conf.write_text(
        f"data:\n  - path: {a}\n    format: alpaca\n    columns: instruction=question,"
        f"output=generated,system=role\n    weight: 2\n  - {b}\n"
    )
    out = tmp_path / "run"
    argv = ["train", "--config", str(conf), "--chat-template", "chatml", "--output-dir",
            str(out), *TINY, "--max-length", "160"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # 48 records, 8 held out, the RoleBench-style ones counted twice: 56 to 64 training
    # examples (40 without the weight), all seen in one epoch.
    assert 56 <= metrics["samples_seen"] <= 64
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    template = tok_cfg.get("chat_template") or (out / "chat_template.jinja").read_text()
    assert "<|im_start|>" in template


def test_export_merges_a_lora_adapter(tmp_path, capsys):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    base_dir = tmp_path / "base"
    _, base = _plain_model(base_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    with torch.no_grad():  # a trained-looking adapter: B is zero at init, so perturb it
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    ids = torch.tensor([[1, 5, 9, 12, 3]])
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
    out = tmp_path / "merged"
    argv = ["export", str(adapter_dir), str(out), "--merge-lora", "--base-model", str(base_dir)]
    assert main(argv) == 0
    assert not (out / "adapter_config.json").exists() and (out / "config.json").exists()
    assert not (tmp_path / "merged.partial").exists()
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        got = merged(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    plain = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(input_ids=ids).logits, expected, atol=1e-4)
    assert isinstance(peft_model, PeftModel)
    # Without --merge-lora an adapter folder is refused with what to do.
    assert main(["export", str(adapter_dir), str(tmp_path / "x")]) == 2
    assert "pass --merge-lora" in capsys.readouterr().err


def test_trust_remote_code_reaches_the_loader(tmp_path, monkeypatch):
    """Off by default (transformers never asks); --trust-remote-code passes True through."""
    seen = []

    def fake_load(path, *, trust_remote_code=False):
        seen.append(trust_remote_code)
        raise ValueError("stop here")

    import slaptune.pipeline.prepare as prep

    monkeypatch.setattr(prep, "load_pretrained", fake_load)
    monkeypatch.setattr("slaptune.models.load.load_pretrained", fake_load)
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(40))
    model = tmp_path / "m"
    model.mkdir()
    base = ["--data", data, "--data-format", "qa", "--model", str(model), "--output-dir",
            str(tmp_path / "o")]  # fmt: skip
    assert main(["train", *base]) == 2
    assert main(["train", *base, "--trust-remote-code"]) == 2
    assert main(["check-data", data, "--data-format", "qa", "--model", str(model),
                 "--trust-remote-code"]) == 2  # fmt: skip
    for cmd in (["eval", str(model), "--data", data, "--data-format", "qa"],
                ["generate", str(model), "--prompt", "x"]):  # fmt: skip
        (model / "config.json").write_text("{}")
        assert main(cmd) == 2
        assert main([*cmd, "--trust-remote-code"]) == 2
    assert seen == [False, True, True, False, True, False, True]


def test_eval_steps_evaluate_during_training_and_keep_the_best_checkpoint(tmp_path, capsys):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records(64))
    out = tmp_path / "run"
    argv = ["train", "--data", data, "--output-dir", str(out), *TINY, "--epochs", "3"]
    argv += ["--eval-steps", "2", "--early-stopping-patience", "2", "--learning-rate", "0.01"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    evals = [h for h in metrics["log_history"] if "eval_loss" in h and "step" in h]
    assert len(evals) >= 2, [h["step"] for h in evals]
    steps = [h["step"] for h in evals]
    # Every 2 steps (and, from transformers, once more at the last step of training).
    assert all(st % 2 == 0 for st in steps[:-1]) and steps[-1] >= steps[-2], steps
    states = sorted(out.glob("checkpoint-*/trainer_state.json"))
    best = json.loads(states[-1].read_text())["best_model_checkpoint"]
    assert best and os.path.basename(best).startswith("checkpoint-")
    # The best checkpoint's loss is the lowest of the evaluations made.
    assert json.loads(states[-1].read_text())["best_metric"] == min(h["eval_loss"] for h in evals)


def test_save_steps_must_be_a_multiple_of_eval_steps(tmp_path, capsys):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    argv = ["train", "--data", data, "--output-dir", str(tmp_path / "r"), *TINY]
    assert main(argv + ["--eval-steps", "2", "--save-steps", "3"]) == 2
    assert "multiple of --eval-steps" in capsys.readouterr().err
