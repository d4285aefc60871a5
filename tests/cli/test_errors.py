"""Every ordinary CLI mistake (issue 12 item 6) is one ``slaptune: error:`` line naming the file
(and line) and what to do: exit status 2, no traceback, no output folder left behind.

``CASES`` is the table: (name, setup, argv, expected text). ``setup(tmp)`` writes the inputs;
``{tmp}`` in argv is the test's folder and ``{out}`` an output folder that must not exist after.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from slaptune.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--model", "llama-tiny", "--epochs", "1", "--batch-size", "4", "--grad-accum", "2",
    "--eval-size", "8", "--eval-generate", "0", "--tokenizer-vocab", "300",
    "--max-length", "64", "--no-progress",
]  # fmt: skip


def qa(n=40):
    return [{"question": f"What is {i} plus {i % 5}?", "answer": str(i + i % 5)} for i in range(n)]


def lines(tmp, name, records):
    with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


def text(tmp, name, body):
    with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
        f.write(body)


def good(tmp):
    lines(tmp, "good.jsonl", qa())


def nested_jsonl(tmp):
    lines(tmp, "d.jsonl", qa(3) + ['{"question": ' + "[" * 200000 + "]" * 200000 + "}"])


def nested_json(tmp):
    text(tmp, "d.json", "[" * 200000 + "]" * 200000)


def role_list(tmp):
    ok = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    bad = {"messages": [{"role": ["user"], "content": "hi"}, {"role": "assistant", "content": "x"}]}
    lines(tmp, "d.jsonl", [ok] * 40 + [bad])


def lang_list(tmp):
    rec = {"source": "Hallo", "target": "Hello", "source_lang": ["de"], "target_lang": "en"}
    lines(tmp, "d.jsonl", [{"source": "a", "target": "b"}] * 40 + [rec])


def surrogate(tmp):
    lines(tmp, "d.jsonl", qa() + ['{"question": "broken \\ud800 escape", "answer": "a"}'])


def csv_quote(tmp):
    text(tmp, "d.csv", 'question,answer\nq1,a1\nq2,"unclosed\nq3,a3\n')


def csv_fields(tmp):
    text(tmp, "d.csv", "question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(40)) + "x,y,z\n")


def config_dir(tmp):
    os.makedirs(os.path.join(tmp, "conf.yaml"))
    good(tmp)


def yaml(body):
    def setup(tmp):
        good(tmp)
        text(tmp, "run.yaml", body)

    return setup


def empty(tmp):
    text(tmp, "d.jsonl", "")


def blank(tmp):
    text(tmp, "d.jsonl", "\n  \n\n")


def a_file(tmp):
    good(tmp)
    text(tmp, "afile", "x")


def bad_template(tmp):
    good(tmp)
    text(tmp, "t.jinja", "{% for m in messages %}\n{{ m['content'] }\n{% endfor %}")


def remote_code(tmp):
    d = os.path.join(tmp, "remote")
    os.makedirs(d)
    text(d, "config.json", json.dumps({
        "model_type": "custom_x", "auto_map": {"AutoConfig": "x.XConfig",
                                               "AutoModelForCausalLM": "x.XModel"}}))  # fmt: skip
    text(d, "x.py", f"open({os.path.join(tmp, 'ran')!r}, 'w').write('ran')\n")
    os.makedirs(os.path.join(tmp, "adapter"))
    text(os.path.join(tmp, "adapter"), "adapter_config.json", '{"peft_type": "LORA"}')
    good(tmp)


def plain_model(tmp):
    from slaptune.models.presets import build_model, build_tokenizer

    tok = build_tokenizer()
    build_model("llama-tiny", len(tok)).save_pretrained(os.path.join(tmp, "m"))
    tok.save_pretrained(os.path.join(tmp, "m"))
    good(tmp)


def corrupt_parquet(tmp):
    text(tmp, "d.parquet", "PAR1 not really")


def json_dict(tmp):
    text(tmp, "d.json", json.dumps({"rows": []}))


T = ["train", *TINY, "--output-dir", "{out}"]
G = ["--data", "{tmp}/good.jsonl", "--data-format", "qa"]
CASES = [
    ("nested jsonl", nested_jsonl, [*T, "--data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "d.jsonl:4: JSON nested too deeply"),
    ("nested json", nested_json, [*T, "--data", "{tmp}/d.json", "--data-format", "qa"],
     "d.json: JSON nested too deeply"),
    ("role is a list", role_list, [*T, "--data", "{tmp}/d.jsonl", "--data-format", "messages"],
     "d.jsonl:41: turn 0 has unknown role ['user']"),
    ("language code is a list", lang_list,
     [*T, "--data", "{tmp}/d.jsonl", "--data-format", "translation"],
     "d.jsonl:41: source_lang must be a language code string"),
    ("lone surrogate (train)", surrogate, [*T, "--data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "d.jsonl:41: turn 0 holds a lone surrogate"),
    ("lone surrogate (check-data)", surrogate, ["check-data", "{tmp}/d.jsonl", "--data-format",
     "qa"], "1 problem(s) in 41 record(s)"),
    ("broken CSV quoting", csv_quote, [*T, "--data", "{tmp}/d.csv", "--data-format", "qa"],
     "d.csv:4: broken CSV"),
    ("CSV row with extra fields", csv_fields, [*T, "--data", "{tmp}/d.csv", "--data-format",
     "qa"], "d.csv:42: 3 field(s) where the header has 2"),
    ("corrupt parquet", corrupt_parquet, [*T, "--data", "{tmp}/d.parquet", "--data-format", "qa"],
     "d.parquet: not a readable Parquet file"),
    (".json without a list", json_dict, [*T, "--data", "{tmp}/d.json", "--data-format", "qa"],
     "d.json: a .json file must hold a list"),
    ("data path under a file", a_file, [*T, "--data", "{tmp}/afile/d.jsonl", "--data-format",
     "qa"], "afile/d.jsonl: no such file"),
    ("data is a plain folder", a_file, [*T, "--data", "{tmp}", "--data-format", "qa"],
     "not a saved datasets folder"),
    ("output dir under a file", a_file, [*T.__getitem__(slice(0, -1)), "{tmp}/afile/run", *G],
     "afile is a file, not a folder"),
    ("config is a folder", config_dir, [*T, "--config", "{tmp}/conf.yaml"],
     "conf.yaml: a folder, not a YAML config file"),
    ("yaml lora: 'no'", yaml("data: [x.jsonl]\nlora: 'no'\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:2: lora must be true or false, got the string 'no'"),
    ("yaml data: 5", yaml("data: 5\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:1: data must be a list of file paths, got int 5"),
    ("yaml keep_ratio: abc", yaml("keep_ratio: abc\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:1: keep_ratio must be a number, got the string 'abc'"),
    ("yaml batch_size: 1.5", yaml("batch_size: 1.5\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:1: batch_size must be a whole number"),
    ("yaml source_lang: no", yaml("source_lang: no\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:1: source_lang must be text, got bool False (quote it in YAML)"),
    ("yaml key without value", yaml("epochs:\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml:1: epochs has no value"),
    ("yaml warmup_ratio: 5", yaml("warmup_ratio: 5\n"), [*T, "--config", "{tmp}/run.yaml", *G],
     "run.yaml:1: warmup_ratio must be in [0, 1], got 5.0"),
    ("yaml nested too deeply", yaml("a: " + "[" * 100000 + "]" * 100000 + "\n"),
     [*T, "--config", "{tmp}/run.yaml"], "run.yaml: YAML nested too deeply"),
    ("generate: lone surrogate prompt", plain_model, ["generate", "{tmp}/m", "--prompt",
     "bad \udcff byte"], "--prompt holds a character that is not valid text"),
    ("eval: LoRA adapter folder", remote_code, ["eval", "{tmp}/adapter", *G],
     "a LoRA adapter folder; merge it first: slaptune export"),
    ("yaml not a mapping", yaml("- a\n- b\n"), [*T, "--config", "{tmp}/run.yaml"],
     "run.yaml: a config must be a mapping"),
    ("--warmup-ratio 5", good, [*T, *G, "--warmup-ratio", "5"], "warmup_ratio must be in [0, 1]"),
    ("--learning-rate inf", good, [*T, *G, "--learning-rate", "inf"],
     "learning_rate must be a finite number, got inf"),
    ("--learning-rate nan", good, [*T, *G, "--learning-rate", "nan"],
     "learning_rate must be a finite number, got nan"),
    ("--learning-rate 0", good, [*T, *G, "--learning-rate", "0"], "learning_rate must be > 0"),
    ("--epochs 0", good, [*T, *G, "--epochs", "0"], "epochs must be > 0"),
    ("--weight-decay -1", good, [*T, *G, "--weight-decay", "-1"], "weight_decay must be >= 0"),
    ("--eval-generate -1", good, [*T, *G, "--eval-generate", "-1"], "eval_generate must be >= 0"),
    ("--lora-r 0", good, [*T, *G, "--lora-r", "0"], "lora_r must be >= 1"),
    ("--logging-steps 0", good, [*T, *G, "--logging-steps", "0"], "logging_steps must be >= 1"),
    ("--temperature nan", good, [*T, *G, "--temperature", "nan"],
     "temperature must be a finite number"),
    ("--eval-steps -1", good, [*T, *G, "--eval-steps", "-1"], "eval_steps must be >= 0"),
    ("patience without eval steps", good, [*T, *G, "--early-stopping-patience", "2"],
     "early_stopping_patience needs evaluations during training"),
    ("--report-to foo", good, [*T, *G, "--report-to", "foo"], "report_to: unknown logger(s)"),
    ("yaml report_to: foo", yaml("report_to: foo\n"), [*T, "--config", "{tmp}/run.yaml", *G],
     "run.yaml:1: report_to: unknown logger(s) ['foo']"),
    ("--batch-size abc", good, [*T, *G, "--batch-size", "abc"],
     "argument --batch-size: invalid int value: 'abc'"),
    ("--data-format nope", good, [*T, "--data", "{tmp}/good.jsonl", "--data-format", "nope"],
     "data_format must be one of"),
    ("unknown flag", good, [*T, *G, "--keep-ration", "0.5"], "unrecognized arguments"),
    ("empty data file", empty, [*T, "--data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "d.jsonl: no record: the file is empty"),
    ("blank-only data file", blank, [*T, "--data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "d.jsonl: no record: the file is empty"),
    ("empty file (check-data)", empty, ["check-data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "1 problem(s)"),
    ("blank file (check-data)", blank, ["check-data", "{tmp}/d.jsonl", "--data-format", "qa"],
     "1 problem(s)"),
    ("empty --output-dir", good, ["train", *TINY, *G, "--output-dir", ""],
     "output_dir is empty"),
    ("CSV with a header only", lambda tmp: text(tmp, "d.csv", "question,answer\n"),
     [*T, "--data", "{tmp}/d.csv", "--data-format", "qa"],
     "d.csv: no record: the file is empty or holds only a header line"),
    ("unknown suffix", a_file, [*T, "--data", "{tmp}/afile", "--data-format", "qa"],
     "afile: unknown file type"),
    ("--data weight not a number", good, [*T, "--data", "{tmp}/good.jsonl:two", "--data-format",
     "qa"], "weight must be a number, got 'two'"),
    ("--data weight 0", good, [*T, "--data", "{tmp}/good.jsonl:0", "--data-format", "qa"],
     "weight must be a finite number > 0"),
    ("--columns without =", good, [*T, *G, "--columns", "question"],
     "each item is FORMAT_FIELD=FILE_FIELD"),
    ("--columns count", good, [*T, *G, "--data", "{tmp}/good.jsonl", "--columns", "a=b", "c=d",
     "e=f"], "--columns given 3 times for 2 --data entries"),
    ("--columns maps a missing field", good, [*T, *G, "--columns", "question=prompt"],
     "40 records: missing field 'prompt' (mapped onto 'question' by --columns)"),
    ("hub model offline", good, [*T, *G, "--model", "someorg/somemodel"],
     "--model 'someorg/somemodel' is neither a folder nor a preset, nor reachable; hub access "
     "is off (HF_HUB_OFFLINE=1): pass --online"),
    ("eval: hub model offline", good, ["eval", "someorg/somemodel", *G],
     "someorg/somemodel: not a model folder here, nor reachable: hub access is off"),
    ("unknown model name", good, [*T, *G, "--model", "llama-3b"], "neither a folder nor a preset"),
    ("hub dataset offline", good, [*T, "--dataset-name", "someorg/someset", "--data-format", "qa"],
     "--dataset-name 'someorg/someset': hub access is off"),
    ("missing chat template", good, [*T, *G, "--chat-template", "{tmp}/nope.jinja"],
     "neither a file nor a built-in"),
    ("broken chat template", bad_template, [*T, *G, "--chat-template", "{tmp}/t.jinja"],
     "t.jinja:2: not a valid Jinja template"),
    ("remote code without the flag", remote_code, [*T, *G, "--model", "{tmp}/remote"],
     "ships its own Python code, which is not run by default; pass --trust-remote-code"),
    ("eval: hub dataset offline", plain_model, ["eval", "{tmp}/m", "--data-format", "qa",
     "--dataset-name", "org/set"], "--dataset-name 'org/set': hub access is off"),
    ("eval: no data", plain_model, ["eval", "{tmp}/m", "--data-format", "qa"],
     "no evaluation data"),
    ("eval: model is a file", a_file, ["eval", "{tmp}/afile", *G], "afile: not a model folder"),
    ("eval: samples file is a folder", plain_model, ["eval", "{tmp}/m", *G, "--samples-file",
     "{tmp}"], "a folder; give a file name"),
    ("eval: --max-new-tokens 0", plain_model, ["eval", "{tmp}/m", *G, "--max-new-tokens", "0"],
     "--max-new-tokens must be >= 1"),
    ("generate: --temperature 0", plain_model, ["generate", "{tmp}/m", "--prompt", "x",
     "--temperature", "0"], "--temperature must be a finite number > 0"),
    ("export: --merge-lora on a plain model", plain_model, ["export", "{tmp}/m", "{out}",
     "--merge-lora"], "not a LoRA adapter folder"),
    ("export: OUT not empty", plain_model, ["export", "{tmp}/m", "{tmp}"],
     "exists and is not empty"),
    ("check-data: nothing given", good, ["check-data", "--data-format", "qa"], "nothing to check"),
    ("demo: --keep-ratio 0", good, ["demo", "--keep-ratio", "0", "--output-dir", "{out}"],
     "keep_ratio must be in (0, 1]"),
    ("bench: grid is a folder", config_dir, ["bench", "--grid", "{tmp}/conf.yaml",
     "--output-dir", "{out}"], "conf.yaml: a folder, not a YAML config file"),
]  # fmt: skip


def run_cli(argv, capsys):
    capsys.readouterr()  # drop what the setup printed
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own mistakes
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name, setup, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_mistake_is_one_line(name, setup, argv, expected, tmp_path, capsys):
    tmp, out = str(tmp_path), str(tmp_path / "out")
    setup(tmp)
    code, _, err = run_cli([a.format(tmp=tmp, out=out) for a in argv], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("slaptune: error:")]
    assert len(errors) == 1 and err.startswith("slaptune: error:"), err
    assert expected in err, err
    assert not os.path.exists(out), "an output folder was left behind"
    assert not os.path.exists(os.path.join(tmp, "ran")), "remote code ran"


def test_case_count():
    """The number reported in docs/results.md (issue 12): every case above, all clean."""
    assert len(CASES) >= 60


def test_diverging_run_blames_the_learning_rate(tmp_path, capsys):
    good(str(tmp_path))
    out = tmp_path / "out"
    argv = ["train", *TINY, "--data", str(tmp_path / "good.jsonl"), "--data-format", "qa",
            "--output-dir", str(out), "--learning-rate", "1e30"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("slaptune: error: training diverged at learning_rate 1e+30")
    assert "lower --learning-rate" in err and "data" not in err.split("(removed")[0]
    assert not out.exists()  # no checkpoint yet: the unfinished folder is removed


def test_yaml_numbers_read_as_written(tmp_path):
    """YAML 1.1 reads 1e-3 as a string and users quote numbers: both are numbers here."""
    from slaptune.cli.main import build_parser
    from slaptune.cli.options import resolve
    from slaptune.pipeline.run_config import RunConfig

    path = tmp_path / "run.yaml"
    path.write_text('learning_rate: 1e-3\nkeep_ratio: "0.5"\nbatch_size: "16"\nlora: no\n'
                    "data: a.jsonl\n")  # fmt: skip
    cfg = resolve(RunConfig, build_parser().parse_args(["train", "--config", str(path)]))
    assert (cfg.learning_rate, cfg.keep_ratio, cfg.batch_size, cfg.lora, cfg.data) == (
        0.001,
        0.5,
        16,
        False,
        ["a.jsonl"],
    )
    assert isinstance(cfg.batch_size, int) and isinstance(cfg.learning_rate, float)


def test_check_data_summarises_identical_problems(tmp_path, capsys):
    """RoleBench read as alpaca without a mapping: one line for 2,534-style repeats."""
    recs = [{"role": "Jack", "question": f"q{i}", "generated": ["a"]} for i in range(60)]
    lines(str(tmp_path), "rb.jsonl", recs + ['{"broken'])
    code, out, err = run_cli(["check-data", str(tmp_path / "rb.jsonl"), "--data-format",
                              "alpaca"], capsys)  # fmt: skip
    assert code == 2 and "Traceback" not in err
    body = out.splitlines()
    assert len(body) == 2, out
    assert body[0] == (
        f"{tmp_path}/rb.jsonl: 60 records: missing field 'instruction' (first at "
        f"{tmp_path}/rb.jsonl:1; fields present: role, question, generated)"
    )
    assert body[1].startswith(f"{tmp_path}/rb.jsonl:61: malformed JSON")
    assert err.startswith("slaptune: error: 61 problem(s) in 61 record(s)")


def _as_nobody():
    """A way to run as an ordinary user (root reads everything, whatever chmod says)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # The ordinary user must be able to run this Python and read this checkout (a clone in a
    # private temporary folder, as readme-check makes, is out of its reach).
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import slaptune"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": REPO},
        cwd="/",
    )
    return prefix if not probe.returncode else None


@pytest.fixture
def shared_tmp():
    """A folder an ordinary user can enter (pytest's tmp_path is root-only)."""
    import tempfile

    d = tempfile.mkdtemp(prefix="slaptune-perm-")
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_permission_errors_are_one_line(shared_tmp):
    """Real PermissionErrors (run as user nobody when the tests run as root): an unreadable
    data file, and an output folder in a folder the user may not write."""
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("cannot run as an ordinary user here (or it cannot read this checkout)")
    lines(shared_tmp, "secret.jsonl", qa())
    os.chmod(os.path.join(shared_tmp, "secret.jsonl"), 0o000)
    lines(shared_tmp, "good.jsonl", qa())
    os.chmod(os.path.join(shared_tmp, "good.jsonl"), 0o644)
    locked = os.path.join(shared_tmp, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    env = {**os.environ, "PYTHONPATH": REPO, "HOME": shared_tmp}
    for data, out, expected in (
        ("secret.jsonl", os.path.join(shared_tmp, "run"), "secret.jsonl: permission denied"),
        ("good.jsonl", os.path.join(locked, "run"), "cannot write in"),
    ):
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "slaptune", "train", *TINY, "--data-format", "qa",
             "--data", os.path.join(shared_tmp, data), "--output-dir", out],
            capture_output=True, text=True, cwd=shared_tmp, env=env,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("slaptune: error:") and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not os.path.exists(out)


# Full when the model's safetensors are written (40k) / when torch.save writes the optimizer.
@pytest.mark.parametrize("size", ["40k", pytest.param("300k", marks=pytest.mark.slow)])
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, size):
    """A real full disk: a small tmpfs in a private mount namespace (root only; skipped
    elsewhere). The checkpoint does not fit; the error says so and the folder is removed."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private tmpfs")
    lines(str(tmp_path), "good.jsonl", qa())
    mnt = tmp_path / "small"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "slaptune", "train", *TINY, "--data-format", "qa",
           "--data", str(tmp_path / "good.jsonl"), "--output-dir", f"{mnt}/run"]  # fmt: skip
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {mnt} || exit 77; "
        f"{' '.join(cmd)}; rc=$?; ls -A {mnt}; exit $rc"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
    )  # fmt: skip
    if proc.returncode == 77:
        pytest.skip("mount not permitted here")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]  # above it: transformers' own progress bars
    assert last.startswith("slaptune: error:") and proc.stderr.count("slaptune: error:") == 1
    assert "no space left on the device" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "", f"left behind: {proc.stdout}"
