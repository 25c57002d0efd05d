"""`ainative predict`'s file handling, on a fast stand-in runtime: every format in and out with every input column passed
through and the seven added columns; bad rows written with their line and error and counted, never dropped;
`max_errors`; the input checked (with messages that name the file and the fix) before any model is loaded."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from ainative.batch import OUTPUT_COLUMNS, PredictConfig, predict_file
from ainative.core import ConfigError, DataFileNotFoundError, DataValidationError, MissingColumnError
from ainative.serving import ServingConfig
from batch_fixtures import fake_intent, read_rows, sample_rows, write_rows

FORMATS = ("csv", "jsonl", "parquet")
EXTENSION = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
QUIET = {"progress": False}


def passed_through(value, source: str, target: str):
    "`value` of an input column as it comes back from the output: text from CSV or into CSV, text into Parquet from JSONL."
    if source == "csv" or target == "csv" or (source, target) == ("jsonl", "parquet"): return str(value)
    return value


def added(row: dict, target: str) -> dict:
    "The added columns of an output row, CSV's text read back as values."
    if target != "csv": return {name: row[name] for name in OUTPUT_COLUMNS}
    text = {name: row[name] for name in OUTPUT_COLUMNS}
    return {**text, "line": int(text["line"]), "confidence": float(text["confidence"]) if text["confidence"] else None,
            "abstained": {"true": True, "false": False, "": None}[text["abstained"]], "intent": text["intent"] or None,
            "error": text["error"] or None}


@pytest.mark.parametrize("source, target", list(itertools.product(FORMATS, FORMATS)),
                         ids=[f"{source}->{target}" for source, target in itertools.product(FORMATS, FORMATS)])
def test_every_column_passes_through_and_every_row_gets_the_answer(source, target, fake, tmp_path):
    rows = sample_rows(23)
    path = write_rows(tmp_path / f"in{EXTENSION[source]}", rows, source, row_group_size=5)
    output = tmp_path / "out" / f"scored{EXTENSION[target]}"
    summary = predict_file(PredictConfig(input=str(path), output=str(output), batch_size=4, chunk_rows=8, **QUIET), runtime=fake)
    scored = read_rows(output, target)
    assert len(scored) == len(rows) == summary["rows"] == summary["answered"] and summary["errors"] == 0
    lines = list(range(1, 24))
    if source == "csv":  # a CSV's header is line 1, and a quoted newline moves the next rows down a line
        lines = [2 + i + sum(row["text"].count("\n") for row in rows[:i]) for i in range(len(rows))]
    for row, original, line in zip(scored, rows, lines):
        assert list(row)[:3] == ["id", "text", "note"] and list(row)[3:] == list(OUTPUT_COLUMNS)
        assert {name: row[name] for name in ("id", "text", "note")} == {name: passed_through(original[name], source, target)
                                                                       for name in ("id", "text", "note")}
        extra = added(row, target)
        unsure = original["text"].startswith("?")
        assert extra["line"] == line and extra["error"] is None and extra["abstained"] is unsure
        assert extra["intent"] == (None if unsure else fake_intent(original["text"]))
        assert 0.8 < extra["confidence"] <= 0.9 and (extra["model"], extra["model_version"]) == ("fake", "v0042")
    assert summary["abstained"] == sum(row["text"].startswith("?") for row in rows)
    assert (summary["model"], summary["model_version"], summary["variant"]) == ("fake", "v0042", "fake.onnx")
    assert [p.name for p in output.parent.iterdir()] == [output.name]  # no temporary file left beside it


def test_a_parquet_output_keeps_a_parquet_inputs_types(fake, tmp_path):
    import pyarrow.parquet as pq
    rows = [{"id": i, "text": f"refund {i}", "score": i / 4, "tags": ["a", str(i)]} for i in range(7)]
    path = write_rows(tmp_path / "in.parquet", rows, "parquet")
    predict_file(PredictConfig(input=str(path), output=str(tmp_path / "out.parquet"), **QUIET), runtime=fake)
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert [str(schema.field(name).type) for name in ("id", "score", "tags", "line", "confidence", "abstained")] == \
        ["int64", "double", "list<element: string>", "int64", "double", "bool"]
    assert read_rows(tmp_path / "out.parquet", "parquet")[3]["tags"] == ["a", "3"]


BAD_CSV = ('id,text\n'
           '1,refund please\n'
           '2,\n'                       # line 3: empty text
           '3,"  "\n'                   # line 4: blank text
           '4\n'                        # line 5: too few fields
           '5,a,b\n'                    # line 6: too many fields
           '\n'                         # line 7: blank line, not a row
           '6,"a quoted\nnewline"\n'    # lines 8-9: one good row
           '7,cancel it\n')             # line 10


def test_bad_csv_rows_are_written_with_their_line_and_error(fake, tmp_path):
    (tmp_path / "in.csv").write_text(BAD_CSV, encoding="utf-8")
    summary = predict_file(PredictConfig(input=str(tmp_path / "in.csv"), output=str(tmp_path / "out.csv"), **QUIET), runtime=fake)
    scored = read_rows(tmp_path / "out.csv", "csv")
    assert [row["line"] for row in scored] == ["2", "3", "4", "5", "6", "8", "10"]
    assert [row["error"] for row in scored] == ["", "the text is empty or only whitespace", "the text is empty or only whitespace",
                                                "1 fields where the header has 2", "3 fields where the header has 2", "", ""]
    assert all(row["intent"] == row["confidence"] == row["abstained"] == "" for row in scored if row["error"])
    assert all(row["model_version"] == "v0042" for row in scored)
    assert (summary["rows"], summary["answered"], summary["errors"]) == (7, 3, 4)
    assert summary["first_errors"][0] == {"line": 3, "error": "the text is empty or only whitespace"}


def test_bad_jsonl_lines_are_written_with_their_line_and_error(fake, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "refund please"}\n'
                                        b'{"text": 5}\n{"text": null}\n{"id": 3}\n{"text": "half\n'
                                        b'["not", "an object"]\n{"text": "caf\xe9"}\n\n{"text": "cancel", "intent": "x"}\n'
                                        b'{"text": "bad \\ud800 surrogate"}\n{"text": "where is it"}\n')
    summary = predict_file(PredictConfig(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out.jsonl"), **QUIET), runtime=fake)
    scored = read_rows(tmp_path / "out.jsonl", "jsonl")
    errors = {row["line"]: row["error"] for row in scored if row["error"]}
    assert [row["line"] for row in scored] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]
    assert errors.pop(5).startswith("the line is not valid JSON: ")  # the line ends inside a string
    assert errors == {2: "the text is a int, not a string", 3: "no text (the text column is missing or null)",
                      4: "no text (the text column is missing or null)",
                      6: "the line holds a JSON list, not an object", 7: "the line is not valid UTF-8",
                      9: "the object has fields that predict writes: ['intent']",
                      10: "the text is not valid Unicode (surrogates not allowed at character 4)"}
    assert (summary["rows"], summary["answered"], summary["errors"]) == (10, 2, 8)


def test_bad_parquet_rows_and_a_text_column_of_numbers(fake, tmp_path):
    write_rows(tmp_path / "in.parquet", [{"text": "refund"}, {"text": None}, {"text": " "}], "parquet")
    summary = predict_file(PredictConfig(input=str(tmp_path / "in.parquet"), output=str(tmp_path / "out.csv"), **QUIET), runtime=fake)
    assert [row["error"] for row in read_rows(tmp_path / "out.csv", "csv")] == [
        "", "no text (the text column is missing or null)", "the text is empty or only whitespace"]
    write_rows(tmp_path / "numbers.parquet", [{"text": 1}, {"text": 2}], "parquet")
    summary = predict_file(PredictConfig(input=str(tmp_path / "numbers.parquet"), output=str(tmp_path / "n.jsonl"), **QUIET), runtime=fake)
    assert summary["errors"] == 2 and read_rows(tmp_path / "n.jsonl", "jsonl")[0]["error"] == "the text is a int, not a string"


def test_max_errors_stops_the_run_and_writes_nothing(fake, tmp_path):
    (tmp_path / "in.csv").write_text(BAD_CSV, encoding="utf-8")
    config = {"input": str(tmp_path / "in.csv"), "output": str(tmp_path / "out.csv"), **QUIET}
    assert predict_file(PredictConfig(**config, max_errors=4), runtime=fake)["errors"] == 4  # at the limit: written
    (tmp_path / "out.csv").unlink()
    with pytest.raises(DataValidationError) as stopped:
        predict_file(PredictConfig(**config, max_errors=3), runtime=fake)
    assert "4 bad rows exceed --max-errors 3 (line 3: the text is empty" in str(stopped.value) and "--max-errors" in stopped.value.fix
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_the_format_flags_override_the_extensions(fake, tmp_path):
    (tmp_path / "tickets.txt").write_text('{"message": "refund please"}\n', encoding="utf-8")
    predict_file(PredictConfig(input=str(tmp_path / "tickets.txt"), output=str(tmp_path / "scored.out"), input_format="jsonl",
                               output_format="csv", text_column="message", **QUIET), runtime=fake)
    assert read_rows(tmp_path / "scored.out", "csv") == [{"message": "refund please", "line": "1", "intent": fake_intent("refund please"),
                                                          "confidence": repr(0.9 - 0.001), "abstained": "false", "model": "fake",
                                                          "model_version": "v0042", "error": ""}]


def test_an_empty_input_gives_an_empty_output(fake, tmp_path):
    (tmp_path / "in.csv").write_text("id,text\n", encoding="utf-8")
    for target in FORMATS:
        output = tmp_path / f"out{EXTENSION[target]}"
        summary = predict_file(PredictConfig(input=str(tmp_path / "in.csv"), output=str(output), shard="1/2", **QUIET), runtime=fake)
        assert summary["rows"] == 0 and read_rows(output, target) == []
    assert (tmp_path / "out.csv").read_text().splitlines() == ["id,text," + ",".join(OUTPUT_COLUMNS)]  # the header only


UNREACHABLE = ServingConfig(registry_dir="/nonexistent/registry")  # opening it would fail: the input is checked first


@pytest.mark.parametrize("files, options, error, message, fix", [
    pytest.param({"in.csv": "id,text\n1,a\n"}, {"shard": "3/2"}, ConfigError, "--shard 3/2 names no part of a file",
                 "JOB_COMPLETION_INDEX", id="shard-3/2"),
    pytest.param({"in.csv": "id,message\n1,a\n"}, {}, MissingColumnError, "in.csv has no column 'text'; it has ['id', 'message']",
                 "--text-column", id="no-text-column"),
    pytest.param({"in.jsonl": '{"message": "a"}\n'}, {}, MissingColumnError, "in.jsonl has no field 'text' in its first object",
                 "--text-column", id="no-text-field"),
    pytest.param({"in.tsv": "text\na\n"}, {}, ConfigError, "Cannot tell the format of in.tsv", "--input-format", id="unknown-format"),
    pytest.param({"in.csv": "text\na\n"}, {"output": "out.xlsx"}, ConfigError, "Cannot tell the format of out.xlsx",
                 "--output-format", id="unknown-output-format"),
    pytest.param({}, {}, DataFileNotFoundError, "in.csv does not exist", "Check the path", id="missing-input"),
    pytest.param({"in.csv": ""}, {}, DataValidationError, "in.csv has no header line", "header", id="no-header"),
    pytest.param({"in.csv": "text,intent\na,b\n"}, {}, DataValidationError, "already has columns that predict adds: ['intent']",
                 "Rename", id="added-column-exists"),
    pytest.param({"in.csv": "text\na\n"}, {"output": "in.csv"}, ConfigError, "would overwrite the input", "another file",
                 id="output-is-input"),
    pytest.param({"in.parquet": "not parquet"}, {}, Exception, "not a readable Parquet file", "--input-format", id="not-parquet"),
])
def test_bad_input_is_refused_before_the_model_loads(files, options, error, message, fix, tmp_path):
    for name, text in files.items(): (tmp_path / name).write_text(text, encoding="utf-8")
    name = next(iter(files), "in.csv")
    config = {"input": str(tmp_path / name), "output": str(tmp_path / "out.csv"), **QUIET, **options}
    if "output" in options: config["output"] = str(tmp_path / options["output"])
    with pytest.raises(error) as refused:
        predict_file(PredictConfig(**config), UNREACHABLE)
    assert message in str(refused.value) and fix in (refused.value.fix or "")
    assert not (tmp_path / "out.csv").exists()


def test_a_summary_is_plain_json(fake, tmp_path):
    path = write_rows(tmp_path / "in.csv", sample_rows(5), "csv")
    summary = predict_file(PredictConfig(input=str(path), output=str(tmp_path / "out.csv"), **QUIET), runtime=fake)
    assert json.loads(json.dumps(summary)) == summary and summary["texts_per_second"] > 0 and summary["int8_host_check"] is None


def test_bytes_that_are_not_utf8_pass_through_and_only_their_text_is_refused(fake, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"id,text\n1,refund please\n2,caf\xe9 au lait\n\xff,where is it\n")
    summary = predict_file(PredictConfig(input=str(tmp_path / "in.csv"), output=str(tmp_path / "out.csv"), **QUIET), runtime=fake)
    written = (tmp_path / "out.csv").read_bytes().splitlines()
    assert written[2].startswith(b"2,caf\xe9 au lait,3,,,,fake,v0042,the text is not valid Unicode") and written[3].startswith(b"\xff,where is it,4,")
    assert (summary["answered"], summary["errors"]) == (2, 1)
