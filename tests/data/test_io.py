"""Readers keep file:line for every record and turn unreadable input into problems."""

import json

from slaptune.data.formats import RecordError, to_example
from slaptune.data.io import Problem, load_examples, summarise
from slaptune.data.sources import parse_source, weighted


def test_csv_keeps_strings_and_physical_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('question,answer\n"multi\nline, with comma",007\nq2,a2\n')
    examples, problems = load_examples(str(path), "qa")
    assert problems == []
    assert [w for _, w in examples] == [f"{path}:2", f"{path}:4"]
    assert examples[0][0].references == ["007"]  # not the number 7
    assert examples[0][0].messages[0]["content"] == "multi\nline, with comma"


def test_csv_broken_quote_is_a_problem_with_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('question,answer\nq1,a1\nq2,"open\nq3,a3\n')
    examples, problems = load_examples(str(path), "qa")
    assert len(examples) == 1
    assert str(problems[0]).startswith(f"{path}:4: broken CSV")


def test_parquet_round_trip_and_corrupt_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "a"}]), good)
    examples, problems = load_examples(str(good), "qa")
    assert len(examples) == 1 and problems == [] and examples[0][1] == f"{good}#0"
    bad = tmp_path / "e.parquet"
    bad.write_bytes(b"PAR1 nonsense")
    _, problems = load_examples(str(bad), "qa")
    assert problems[0].message.startswith("not a readable Parquet file")


def test_lists_where_codes_belong_and_surrogates_are_record_errors():
    for record, fmt in (
        ({"messages": [{"role": {"a": 1}, "content": "x"}]}, "messages"),
        ({"source": "a", "target": "b", "target_lang": ["en"]}, "translation"),
        ({"question": "q", "answer": "a", "task": ["qa"]}, "qa"),
        ({"question": "q", "answer": "a", "id": {"x": 1}}, "qa"),
        (json.loads('{"question": "bad \\udc80", "answer": "a"}'), "qa"),
    ):
        try:
            to_example(record, fmt)
        except RecordError:
            continue
        raise AssertionError(f"accepted {record!r}")


def test_empty_file_is_a_problem(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n\n")
    assert load_examples(str(path), "qa") == (
        [],
        [Problem(str(path), "no record: the file is empty or holds only blank lines")],
    )


def test_summarise_keeps_few_and_folds_many():
    few = [Problem(f"f:{i}", "m") for i in range(3)]
    assert summarise(few) == ["f:0: m", "f:1: m", "f:2: m"]
    many = [Problem(f"f:{i}", "m", ("a",)) for i in range(4)]
    assert summarise(many) == ["f: 4 records: m (first at f:0; fields present: a)"]


def test_data_spec_weights():
    assert parse_source("x.jsonl", "qa").weight == 1.0
    assert parse_source({"path": "y.csv", "weight": 0.25}, "qa").weight == 0.25
    assert len(weighted(list(range(10)), 2.5, seed=1)) == 25
    assert weighted(list(range(10)), 0.3, seed=1) == weighted(list(range(10)), 0.3, seed=1)
