"""TSV files: no quoting (a `"` is an ordinary character), one record a line, a tab only between fields.

A TSV reader that applies CSV quoting silently merges rows: a text that starts with `"` opens a quoted field
that runs, tabs and newlines included, to the next `"`, possibly many rows later. A text that holds a tab or a
line break cannot be written in TSV at all; such a file is refused with the line and row to fix.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ainative.core import AinativeError, DataEncodingError
from ainative.data import DataConfig, prepare_data, read_table

LABELS = ("billing", "shipping", "returns")


def good_lines(per_label: int = 12) -> list[str]:
    return [f"question {i} about {label} please help\t{label}" for label in LABELS for i in range(per_label)]


def write_tsv(path: Path, lines: list[str], header: str = "text\tlabel", newline: str = "\n") -> Path:
    path.write_bytes((newline.join([header, *lines]) + newline).encode("utf-8"))
    return path


def test_a_text_starting_with_a_quote_does_not_swallow_the_rows_after_it(tmp_path):
    lines = good_lines(2)
    lines.insert(1, '"Where is my parcel? It said 2 days\tshipping')
    lines.insert(4, 'the app says "delivered" but it is not\tshipping')  # CSV quoting would close the field here
    table = read_table(write_tsv(tmp_path / "quote.tsv", lines))
    assert len(table) == len(lines) == 8
    assert table.text[1] == '"Where is my parcel? It said 2 days' and table.label[1] == "shipping"
    assert table.text.tolist()[2:] == [line.split("\t")[0] for line in lines[2:]]
    assert table.row.tolist() == list(range(1, 9))


@pytest.mark.parametrize("text", ['"quoted from start to end"', 'a "quoted" word', 'ends with a quote"', '""', "it's 'single'"])
def test_quotes_are_kept_verbatim(text, tmp_path):
    table = read_table(write_tsv(tmp_path / "q.tsv", [f"{text}\tbilling", "next row\treturns"]))
    assert table.text.tolist() == [text, "next row"] and table.label.tolist() == ["billing", "returns"]


def test_a_quote_at_the_start_reaches_the_splits_unchanged(tmp_path):
    lines = good_lines()
    lines[4] = '"my card was charged twice\tbilling'
    prepared = prepare_data(DataConfig(dataset=str(write_tsv(tmp_path / "d.tsv", lines)), run_dir=str(tmp_path / "run")))
    assert sum(prepared.manifest["counts"].values()) == 36
    assert '"my card was charged twice' in set().union(*(set(s.text) for s in prepared.splits.values()))


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_line_endings_and_a_byte_order_mark(newline, tmp_path):
    path = write_tsv(tmp_path / "bom.tsv", good_lines(1), header="\ufefftext\tlabel", newline=newline)
    table = read_table(path)
    assert table.text.tolist() == [line.split("\t")[0] for line in good_lines(1)]
    assert table.label.tolist() == list(LABELS)


def test_blank_lines_are_skipped_and_rows_count_records(tmp_path):
    path = write_tsv(tmp_path / "blank.tsv", ["first\tbilling", "", "second\treturns", ""])
    table = read_table(path)
    assert table.text.tolist() == ["first", "second"] and table.row.tolist() == [1, 2]


def test_other_columns_and_names_work(tmp_path):
    path = write_tsv(tmp_path / "named.tsv", ["1\twhere is it\tshipping"], header="id\tutterance\tintent")
    table = read_table(path, text_column="utterance", label_column="intent")
    assert table.text.tolist() == ["where is it"] and table.label.tolist() == ["shipping"]


def _tab_in_text(tmp):
    lines = good_lines(2)
    lines[3] = "my parcel\tis late\tshipping"
    return write_tsv(tmp / "tab.tsv", lines), "line 5 (row 4) has 3 tab-separated fields", "tab"

def _line_break_in_text(tmp):
    lines = good_lines(2)
    lines[2:3] = ["where is", "my parcel\tshipping"]  # one text, broken over two lines
    return write_tsv(tmp / "break.tsv", lines), "line 4 (row 3) has 1 tab-separated field", "line break"

def _carriage_return_in_text(tmp):
    lines = good_lines(2)
    lines[0] = "where is\rmy parcel\tshipping"
    return write_tsv(tmp / "cr.tsv", lines), "line 2 (row 1) holds a carriage return", "line break"

def _repeated_header(tmp):
    return write_tsv(tmp / "dup.tsv", good_lines(1), header="text\ttext"), "repeats a column name", "header"


@pytest.mark.parametrize("build", [_tab_in_text, _line_break_in_text, _carriage_return_in_text, _repeated_header],
                         ids=["tab_in_text", "line_break_in_text", "carriage_return_in_text", "repeated_header"])
def test_a_text_that_cannot_be_tsv_is_refused_with_line_row_and_fix(build, tmp_path):
    path, expected_what, fix_word = build(tmp_path)
    with pytest.raises(DataEncodingError) as info:
        prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))
    err = info.value
    assert isinstance(err, AinativeError) and expected_what in err.what, err.what
    assert err.where == str(path)
    assert fix_word in err.fix and ("CSV" in err.fix or "JSONL" in err.fix or "column" in err.fix)
    assert not (tmp_path / "run" / "data").exists()


def test_an_empty_tsv_file_is_refused(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_bytes(b"")
    with pytest.raises(DataEncodingError, match="empty"):
        read_table(path)


def test_csv_keeps_its_quoting(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('text,label\n"where is my parcel, please?",shipping\n"a ""quoted"" word",billing\n', encoding="utf-8")
    assert read_table(path).text.tolist() == ["where is my parcel, please?", 'a "quoted" word']
