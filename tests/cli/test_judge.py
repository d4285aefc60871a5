"""``slaptune judge`` against a real OpenAI-compatible HTTP server process on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from slaptune.cli.main import main
from tests.shared import STORIES, write_jsonl

# A judge server in its own process: POST /v1/chat/completions answers with a deterministic
# verdict. "longer": the longer answer wins (equal lengths tie). "first": always "A", a judge
# with pure position bias. Each request is logged to a file so the test can count them.
SERVER = r"""
import json, re, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

mode, log = sys.argv[1], sys.argv[2]

class Judge(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", user, re.S).group(1)
        b = re.search(r"\[Answer B\]\n(.*?)\n\n\[End\]", user, re.S).group(1)
        if mode == "first":
            verdict = "A"
        else:
            verdict = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "TIE"
        with open(log, "a") as f:
            seen = {"auth": self.headers.get("Authorization"), "model": body["model"]}
            f.write(json.dumps(seen) + "\n")
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Judge)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def judge_server(tmp_path):
    started = []

    def start(mode):
        script = tmp_path / "server.py"
        script.write_text(SERVER)
        log = tmp_path / f"requests-{mode}.jsonl"
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, str(log)], stdout=subprocess.PIPE, text=True
        )
        started.append(proc)
        port = int(proc.stdout.readline())
        return f"http://127.0.0.1:{port}/v1", log

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def generations(tmp_path):
    prompts = [f"question {i}?" for i in range(5)]
    # A's answers are longer on 3 prompts, equal on 1, shorter on 1.
    a = ["a long answer", "another long answer", "long long", "same", "x"]
    b = ["short", "short", "short", "same", "much longer than x"]
    ga = write_jsonl(tmp_path / "a.jsonl", [{"prompt": p, "answer": x} for p, x in zip(prompts, a)])
    gb = write_jsonl(tmp_path / "b.jsonl", [{"prompt": p, "answer": x} for p, x in zip(prompts, b)])
    return ga, gb


def test_judge_counts_wins_ties_and_losses_in_both_orders(tmp_path, judge_server, monkeypatch):
    url, log = judge_server("longer")
    ga, gb = generations(tmp_path)
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test")
    out = tmp_path / "res" / "judge.json"
    argv = ["judge", ga, gb, "--judge-url", url, "--judge-model", "len-judge"]
    argv += ["--api-key-env", "MY_JUDGE_KEY", "--output", str(out)]
    assert main(argv) == 0
    summary = json.loads(out.read_text())
    assert (summary["wins_a"], summary["wins_b"], summary["ties"]) == (3, 1, 1)
    assert summary["win_rate_a"] == pytest.approx((3 + 0.5) / 5)
    assert summary["first_position_preferred"] == pytest.approx(4 / 8)  # 8 non-tie of 10
    raw = [json.loads(x) for x in (tmp_path / "res" / "judge.raw.jsonl").read_text().splitlines()]
    assert len(raw) == 10 and {r["order"] for r in raw} == {"ab", "ba"}
    requests = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(requests) == 10
    assert all(r["auth"] == "Bearer sk-test" and r["model"] == "len-judge" for r in requests)


def test_position_bias_cancels_to_ties(tmp_path, judge_server):
    url, _ = judge_server("first")
    ga, gb = generations(tmp_path)
    out = tmp_path / "judge.json"
    argv = ["judge", ga, gb, "--judge-url", url, "--judge-model", "m", "--output", str(out)]
    assert main([*argv, "--max-prompts", "3"]) == 0
    summary = json.loads(out.read_text())
    assert (summary["wins_a"], summary["wins_b"], summary["ties"]) == (0, 0, 3)
    assert summary["first_position_preferred"] == 1.0


def test_unreachable_judge_is_one_line(tmp_path, capsys):
    ga, gb = generations(tmp_path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "judge.json"
    argv = ["judge", ga, gb, "--judge-url", f"http://127.0.0.1:{port}/v1", "--judge-model", "m"]
    t0 = time.perf_counter()
    assert main([*argv, "--output", str(out), "--retries", "0", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slaptune: error: judge endpoint") and "unreachable" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "judge.raw.jsonl").exists()
    assert time.perf_counter() - t0 < 60  # bounded: no hanging on a dead endpoint


def test_bad_generation_file_names_file_and_line(tmp_path, capsys):
    ga, _ = generations(tmp_path)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "answer": "x"}, {"answer": "y"}])
    argv = ["judge", ga, bad, "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m"]
    assert main([*argv, "--output", str(tmp_path / "j.json")]) == 2
    assert f"{bad}:2: expected a JSON object" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists(STORIES), reason="shared stories260K not present")
def test_judge_generates_from_model_folders(tmp_path, judge_server):
    url, log = judge_server("longer")
    model = tmp_path / "stories"
    src = [os.path.join(STORIES, n) for n in ("stories260K.bin", "tok512.bin")]
    assert main(["convert", "llama2c", *src, str(model)]) == 0
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Tell me a story."}, {"prompt": "Hi"}])
    out = tmp_path / "judge.json"
    argv = ["judge", str(model), str(model), "--prompts", prompts, "--max-new-tokens", "8"]
    assert main([*argv, "--judge-url", url, "--judge-model", "m", "--output", str(out)]) == 0
    summary = json.loads(out.read_text())
    # The same model greedily answers the same prompts identically: every pair is a tie.
    assert summary["prompts"] == 2 and summary["ties"] == 2
    assert len(log.read_text().splitlines()) == 4
