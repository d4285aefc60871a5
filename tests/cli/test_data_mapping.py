"""--columns field mapping (RoleBench's role/question/generated), weighted mixtures of files,
per-file formats in YAML, and hub datasets (wiring; the network is not reachable in tests)."""

import json
import os

import pytest

from slaptune.cli.main import build_parser, main
from slaptune.cli.options import resolve
from slaptune.pipeline.prepare import prepare, read_and_check, run_sources
from slaptune.pipeline.run_config import RunConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("SLAPTUNE_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
ROLEBENCH = os.path.join(
    SHARED, "rolebench", "rolebench-eng", "role-generalization", "role_specific", "test.jsonl"
)
ROLE_COLUMNS = "instruction=question,output=generated,system=role"


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)


def role_records(n, role="Jack Sparrow"):
    return [
        {"role": role, "question": f"Question {i}?", "generated": [f"Answer {i}.", "alt"]}
        for i in range(n)
    ]


def test_columns_map_rolebench_fields_onto_alpaca(tmp_path):
    path = write_jsonl(tmp_path / "rb.jsonl", role_records(3))
    cfg = RunConfig(data=[path], data_format="alpaca", columns=[ROLE_COLUMNS])
    (groups, problems) = read_and_check(run_sources(cfg), cfg, "training data")
    ex, where = groups[0][1]
    assert problems == [] and where == f"{path}:2"
    assert ex.messages == [
        {"role": "system", "content": "Jack Sparrow"},
        {"role": "user", "content": "Question 1?"},
        {"role": "assistant", "content": "Answer 1."},
    ]
    assert ex.references == ["Answer 1.", "alt"]  # every generated answer is a reference


@pytest.mark.skipif(not os.path.exists(ROLEBENCH), reason="shared RoleBench not present")
def test_real_rolebench_file_checks_clean_with_the_mapping(capsys):
    assert (
        main(["check-data", ROLEBENCH, "--data-format", "alpaca", "--columns", ROLE_COLUMNS]) == 0
    )
    assert capsys.readouterr().out.startswith("ok: 2534 record(s)")
    # Without the mapping: one summary line for the 2,534 identical problems, not 2,534 lines.
    assert main(["check-data", ROLEBENCH, "--data-format", "alpaca"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{ROLEBENCH}: 2534 records: missing field 'instruction' (first at {ROLEBENCH}:1; "
        "fields present: role, question, generated, type)"
    ]


def test_weighted_mixture_and_no_eval_leak(tmp_path, byte_tokenizer):
    a = write_jsonl(tmp_path / "a.jsonl", role_records(20, "A"))
    b = write_jsonl(tmp_path / "b.jsonl", role_records(40, "B"))
    argv = ["train", "--data", f"{a}:2", "--data", f"{b}:0.5", "--columns", ROLE_COLUMNS,
            "--data-format", "alpaca", "--model", "llama-tiny", "--eval-size", "10",
            "--tokenizer-vocab", "300", "--batch-size", "2"]  # fmt: skip
    cfg = resolve(RunConfig, build_parser().parse_args(argv))
    assert cfg.data == [f"{a}:2", f"{b}:0.5"]
    _, _, data = prepare(cfg)
    held = {e.messages[1]["content"] + e.messages[0]["content"] for e in data.eval_examples}
    n_eval = len(data.eval_examples)
    assert n_eval == 10
    n_eval_a = sum(e.messages[0]["content"] == "A" for e in data.eval_examples)
    # Weights apply after the held-out split: a's 20 - held twice, half of b's 40 - held.
    assert len(data.train_rows) == 2 * (20 - n_eval_a) + round(0.5 * (40 - (n_eval - n_eval_a)))
    assert len(held) == n_eval


def test_yaml_columns_as_a_mapping(tmp_path):
    rb = write_jsonl(tmp_path / "rb.jsonl", role_records(4))
    conf = tmp_path / "run.yaml"
    conf.write_text(
        f"data: {rb}\ndata_format: alpaca\ncolumns: {{instruction: question, output: generated}}\n"
    )
    cfg = resolve(RunConfig, build_parser().parse_args(["train", "--config", str(conf)]))
    groups, problems = read_and_check(run_sources(cfg), cfg, "training data")
    assert problems == [] and len(groups[0]) == 4


def test_yaml_mixture_with_per_file_format_and_columns(tmp_path):
    qa = write_jsonl(
        tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(8)]
    )
    rb = write_jsonl(tmp_path / "rb.jsonl", role_records(6))
    conf = tmp_path / "run.yaml"
    conf.write_text(
        f"data_format: qa\ndata:\n  - {qa}\n  - path: {rb}\n    format: alpaca\n"
        f"    columns: {{instruction: question, output: generated}}\n    weight: 3\n"
    )
    cfg = resolve(RunConfig, build_parser().parse_args(["train", "--config", str(conf)]))
    sources = run_sources(cfg)
    assert [(s.format, s.weight) for s in sources] == [("qa", 1.0), ("alpaca", 3.0)]
    groups, problems = read_and_check(sources, cfg, "training data")
    assert problems == [] and [len(g) for g in groups] == [8, 6]


def test_hub_dataset_is_loaded_with_name_config_split_and_mapping(tmp_path, monkeypatch):
    """No network in tests: the hub call is replaced, to check what slaptune asks it for and
    that the records go through the same mapping and checks as a file's."""
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(role_records(5) + [{"role": "x", "question": "q"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    cfg = RunConfig(
        dataset_name="org/rolebench", dataset_config="eng", split="test",
        data_format="alpaca", columns=[ROLE_COLUMNS], skip_bad_records=True,
    )  # fmt: skip
    groups, problems = read_and_check(run_sources(cfg), cfg, "training data")
    assert calls == [("org/rolebench", "eng", "test")]
    assert len(groups[0]) == 5 and groups[0][0][0].messages[0]["content"] == "Jack Sparrow"
    assert [str(p) for p in problems] == [
        "org/rolebench[test]#5: missing field 'generated' (mapped onto 'output' by --columns)"
    ]


def test_online_flag_turns_hub_access_on(monkeypatch, capsys):
    """``--online`` sets HF_HUB_OFFLINE=0 before anything loads; without it the default is 1.
    (The hub is not reachable here, so the id then fails with one line naming it.)"""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert main(["generate", "someorg/somemodel", "--prompt", "x"]) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "hub access is off" in capsys.readouterr().err
    monkeypatch.setattr("slaptune.models.load.is_hub_id", lambda name: True)
    code = main(["generate", "someorg/somemodel", "--prompt", "x", "--online"])
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    err = capsys.readouterr().err
    assert code == 2 and "someorg/somemodel: not reachable on the hub" in err, err
