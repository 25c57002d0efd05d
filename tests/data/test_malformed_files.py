"""Malformed input files: each one gives its own error class, a message that says where, and a fix.

Every fixture is written into `tmp_path` by the test itself and goes through the public entry point
`prepare_data(DataConfig(dataset=..., run_dir=...))`. Failed runs must never leave a `data/` folder
that looks complete, and a crash while writing must leave the previous `data/` folder intact.
"""
from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

import ainative.data as data_module
from ainative.core import (AinativeError, ClassTooSmallError, DataEncodingError, DataFileNotFoundError,
                           DataSourceError, EmptyTextError, LongTextWarning, MissingColumnError, MissingLabelError,
                           NonStringTextError, UnseenLabelError, sha256_file)
from ainative.data import SPLITS, DataConfig, load_splits, prepare_data

LABELS = ("billing", "shipping", "returns")


# ----------------------------------------------------------------------------------------------- helpers
def good_rows(per_label: int = 12, labels=LABELS, tag: str = "") -> list[dict[str, Any]]:
    "Distinct, valid rows: `per_label` for each label (12 x 3 is enough to stratify 0.7/0.2/0.1)."
    return [{"text": f"{tag}question {i} about {label} please help", "label": label}
            for label in labels for i in range(per_label)]


def write_csv(path: Path, rows: list[dict[str, Any]], header: tuple[str, str] = ("text", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows: writer.writerow([row["text"], row["label"]])
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run_prepare(dataset: Path, tmp_path: Path, **params):
    return prepare_data(DataConfig(dataset=str(dataset), run_dir=str(tmp_path / "run"), **params))


def leftovers(run_dir: Path) -> list[str]:
    "Staging or backup folders of write_data_dir left in the run directory."
    if not run_dir.exists(): return []
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith((".data.tmp-", ".data.old-")))


def assert_no_data_written(tmp_path: Path):
    run_dir = tmp_path / "run"
    assert not (run_dir / "data" / "manifest.json").exists()
    assert not (run_dir / "data").exists()
    assert leftovers(run_dir) == []


# ----------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    build: Callable[[Path], tuple[Path, dict[str, Any]]]   # tmp_path -> (dataset file, extra params)
    error: type[AinativeError]
    check: Callable[[AinativeError, Path], None]            # (error, dataset file) -> asserts
    exact_type: bool = True                                  # error must be exactly `error`, not a subclass
    marks: list = field(default_factory=list)               # marks for the "has a fix" test only


def _missing_file(tmp: Path):
    return tmp / "no_such_file.csv", {}

def _check_missing_file(err, path):
    assert isinstance(err, FileNotFoundError)
    assert "does not exist" in err.what and path.name in err.what
    assert err.where == str(path.resolve())
    assert "banking77" in err.fix  # suggests the named datasets


def _latin1_csv(tmp: Path):
    path = tmp / "latin1.csv"
    body = "text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in good_rows())
    path.write_bytes(body.encode("utf-8") + b"caf\xe9 au lait is not what I ordered,shipping\n")
    return path, {}

def _check_latin1(err, path):
    assert "not valid utf-8 text" in err.what
    assert err.where == str(path)
    assert "encoding=" in err.fix and "latin-1" in err.fix


def _unbalanced_quote_csv(tmp: Path):
    path = tmp / "unbalanced.csv"
    path.write_text('text,label\nfine row,billing\n"this quote never closes,billing\nlast,shipping\n', encoding="utf-8")
    return path, {}

def _check_unbalanced_quote(err, path):
    assert err.what.startswith("The file is not valid CSV")
    assert "EOF inside string" in err.what
    assert err.where == str(path)


def _wrong_field_count_csv(tmp: Path):
    path = tmp / "fields.csv"
    path.write_text("text,label\nfine row,billing\none field too many,billing,extra\nlast,shipping\n", encoding="utf-8")
    return path, {}

def _check_wrong_field_count(err, path):
    assert "not valid CSV" in err.what
    assert "Expected 2 fields in line 3, saw 3" in err.what  # names the line and both counts
    assert err.where == str(path)
    assert "number of fields" in err.fix


def _invalid_jsonl_line(tmp: Path):
    path = tmp / "broken.jsonl"
    lines = [json.dumps(r) for r in good_rows()[:4]] + ['{"text": "no closing brace", "label": "billing"']
    lines += [json.dumps(r) for r in good_rows()[4:6]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {}

def _check_invalid_jsonl(err, path):
    assert err.what.startswith("Line 5 is not valid JSON")
    assert err.where == str(path)
    assert "JSON Lines" in err.fix


def _jsonl_line_not_object(tmp: Path):
    path = write_jsonl(tmp / "array_line.jsonl", [good_rows()[0], ["a list", "billing"], good_rows()[1]])
    return path, {}

def _check_jsonl_not_object(err, path):
    assert "Line 2 is a JSON list, not an object" in err.what
    assert err.where == str(path)


def _corrupt_parquet(tmp: Path):
    path = tmp / "corrupt.parquet"
    noise = random.Random(0).randbytes(64)  # seeded: the same "random" bytes every run
    path.write_bytes(noise + b"definitely not parquet" + noise[::-1])
    return path, {}

def _check_corrupt_parquet(err, path):
    assert "not a readable parquet file" in err.what
    assert err.where == str(path)


def _empty_csv(tmp: Path):
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path, {}

def _check_empty_csv(err, path):
    assert "empty" in err.what
    assert err.where == str(path)


def _xlsx(tmp: Path):
    path = tmp / "intents.xlsx"
    path.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(32))
    return path, {}

def _check_xlsx(err, path):
    assert "'.xlsx'" in err.what
    assert err.where == str(path)
    assert ".csv" in err.fix and ".parquet" in err.fix


def _misnamed_text_column(tmp: Path):
    return write_csv(tmp / "txt.csv", good_rows(), header=("txt", "label")), {}

def _check_misnamed_text(err, path):
    assert "['text'] not found" in err.what
    assert "the file has columns ['txt', 'label']" in err.what
    assert "did you mean 'txt' for 'text'?" in err.fix
    assert err.where == str(path)


def _misnamed_label_column(tmp: Path):
    return write_csv(tmp / "intent.csv", good_rows(), header=("text", "intents")), {"label_column": "intent"}

def _check_misnamed_label(err, path):
    assert "['intent'] not found" in err.what
    assert "the file has columns ['text', 'intents']" in err.what
    assert "did you mean 'intents' for 'intent'?" in err.fix


def _both_columns_missing(tmp: Path):
    return write_csv(tmp / "other.csv", good_rows(), header=("utterance", "category")), {}

def _check_both_missing(err, path):
    assert "['text', 'label'] not found" in err.what
    assert "['utterance', 'category']" in err.what
    assert "did you mean" not in err.fix  # nothing close: no bogus suggestion
    assert "text_column=" in err.fix and "label_column=" in err.fix


def _empty_text(tmp: Path):
    rows = good_rows()
    rows[3]["text"] = "   \t "
    rows[20]["text"] = ""
    return write_csv(tmp / "empty_text.csv", rows), {}

def _check_empty_text(err, path):
    assert err.what.startswith("2 of 36 rows of the train split have empty or whitespace-only text")
    assert "rows 4, 21 " in err.where and "empty_text.csv" in err.where
    assert "on_bad_rows='drop'" in err.fix


def _many_empty_texts(tmp: Path):
    rows = good_rows()
    for i in (0, 1, 2, 13, 14, 30, 35): rows[i]["text"] = " "
    return write_csv(tmp / "many_empty.csv", rows), {}

def _check_many_empty(err, path):
    assert err.what.startswith("7 of 36 rows")
    assert "rows 1, 2, 3, 14, 15, … (7 in all)" in err.where  # the first five, then the total


def _missing_label(tmp: Path):
    rows = good_rows()
    rows[5]["label"] = ""
    rows[30]["label"] = "   "
    return write_csv(tmp / "no_label.csv", rows), {}

def _check_missing_label(err, path):
    assert err.what.startswith("2 of 36 rows of the train split have no label")
    assert "rows 6, 31 " in err.where


def _null_label_jsonl(tmp: Path):
    records = good_rows()
    records[10]["label"] = None
    del records[11]["label"]
    return write_jsonl(tmp / "null_label.jsonl", records), {}

def _check_null_label(err, path):
    assert err.what.startswith("2 of 36 rows")
    assert "rows 11, 12 " in err.where


def _non_string_text(tmp: Path):
    records = good_rows()
    records[2]["text"] = 42
    records[7]["text"] = ["a", "list"]
    records[25]["text"] = {"nested": "object"}
    return write_jsonl(tmp / "non_string.jsonl", records), {}

def _check_non_string(err, path):
    assert err.what.startswith("3 of 36 rows of the train split have text that is not a string")
    assert "rows 3, 8, 26 " in err.where


def _unseen_label(tmp: Path):
    train = write_csv(tmp / "train.csv", good_rows())
    test_rows = [{"text": "a brand new billing question", "label": "billing"},
                 {"text": "where is my gift voucher", "label": "gift_cards"},
                 {"text": "can I buy a gift card", "label": "gift_cards"}]
    test = write_csv(tmp / "test.csv", test_rows)
    return train, {"test_file": str(test)}

def _check_unseen(err, path):
    assert "The test split has 2 rows with labels never seen in train" in err.what
    assert "'gift_cards': 2" in err.what
    assert err.where == "test split, rows 2, 3"


def _class_too_small(tmp: Path):
    rows = good_rows() + [{"text": f"a rare request number {i}", "label": "rare_intent"} for i in range(3)]
    return write_csv(tmp / "small_class.csv", rows), {}

def _check_too_small(err, path):
    assert "fewer than 10 examples" in err.what
    assert "{'rare_intent': 3}" in err.what
    for label in LABELS: assert label not in err.what  # only the small class is named
    assert err.where == "train split"


CASES = [
    Case("missing_file", _missing_file, DataFileNotFoundError, _check_missing_file),
    Case("latin1_bytes_in_utf8_csv", _latin1_csv, DataEncodingError, _check_latin1),
    Case("csv_unbalanced_quote", _unbalanced_quote_csv, DataEncodingError, _check_unbalanced_quote),
    Case("csv_wrong_field_count", _wrong_field_count_csv, DataEncodingError, _check_wrong_field_count),
    Case("jsonl_invalid_line", _invalid_jsonl_line, DataEncodingError, _check_invalid_jsonl),
    Case("jsonl_line_not_object", _jsonl_line_not_object, DataEncodingError, _check_jsonl_not_object),
    Case("parquet_corrupt", _corrupt_parquet, DataEncodingError, _check_corrupt_parquet),
    Case("csv_empty_file", _empty_csv, DataEncodingError, _check_empty_csv),
    Case("unsupported_suffix_xlsx", _xlsx, DataSourceError, _check_xlsx),
    Case("misnamed_text_column", _misnamed_text_column, MissingColumnError, _check_misnamed_text),
    Case("misnamed_label_column", _misnamed_label_column, MissingColumnError, _check_misnamed_label),
    Case("both_columns_missing", _both_columns_missing, MissingColumnError, _check_both_missing),
    Case("empty_text", _empty_text, EmptyTextError, _check_empty_text),
    Case("many_empty_texts", _many_empty_texts, EmptyTextError, _check_many_empty),
    Case("missing_label", _missing_label, MissingLabelError, _check_missing_label),
    Case("jsonl_null_label", _null_label_jsonl, MissingLabelError, _check_null_label),
    Case("jsonl_non_string_text", _non_string_text, NonStringTextError, _check_non_string),
    Case("unseen_label_in_test_file", _unseen_label, UnseenLabelError, _check_unseen),
    Case("class_too_small", _class_too_small, ClassTooSmallError, _check_too_small),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_file_raises_its_specific_error(case: Case, tmp_path: Path):
    path, params = case.build(tmp_path)
    with pytest.raises(case.error) as info:
        run_prepare(path, tmp_path, **params)
    err = info.value
    if case.exact_type: assert type(err) is case.error
    assert isinstance(err, AinativeError)
    assert str(err) == err.message and err.what in str(err)
    case.check(err, path)
    # a failed run never leaves a data/ folder (complete-looking or not), nor staging folders
    assert_no_data_written(tmp_path)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_every_error_names_a_fix(case: Case, tmp_path: Path):
    path, params = case.build(tmp_path)
    with pytest.raises(AinativeError) as info:
        run_prepare(path, tmp_path, **params)
    assert isinstance(info.value.fix, str) and info.value.fix.strip()
    assert "  fix: " in str(info.value)


def test_unseen_label_in_validation_file_is_named(tmp_path: Path):
    train = write_csv(tmp_path / "train.csv", good_rows())
    validation = write_csv(tmp_path / "validation.csv", [{"text": "what about crypto payments", "label": "crypto"}])
    test = write_csv(tmp_path / "test.csv", [{"text": "a brand new returns question", "label": "returns"}])
    with pytest.raises(UnseenLabelError) as info:
        run_prepare(train, tmp_path, validation_file=str(validation), test_file=str(test))
    assert "The validation split has 1 rows" in info.value.what and "'crypto': 1" in info.value.what
    assert info.value.where == "validation split, rows 1"
    assert_no_data_written(tmp_path)


def test_bad_row_in_test_file_names_the_test_file(tmp_path: Path):
    train = write_csv(tmp_path / "train.csv", good_rows())
    test = write_csv(tmp_path / "held_out.csv", [{"text": "a brand new billing question", "label": "billing"},
                                                 {"text": "   ", "label": "returns"}])
    with pytest.raises(EmptyTextError) as info:
        run_prepare(train, tmp_path, test_file=str(test))
    assert "rows 2 " in info.value.where
    assert "held_out.csv" in info.value.where  # actual: 'train.csv test, rows 2 (...)'


def test_latin1_file_reads_with_the_encoding_option(tmp_path: Path):
    path, _ = _latin1_csv(tmp_path)
    prepared = run_prepare(path, tmp_path, encoding="latin-1")
    texts = pd.concat([prepared.splits[s] for s in SPLITS]).text.tolist()
    assert "café au lait is not what I ordered" in texts
    assert sum(prepared.manifest["counts"].values()) == 37


# ----------------------------------------------------------------------------------------------- long texts
def test_long_texts_warn_and_are_kept_and_counted_per_split(tmp_path: Path):
    train_rows = good_rows()
    train_rows[0]["text"] = "a very long billing complaint " + "x" * 60
    train_rows[14]["text"] = "a very long shipping complaint " + "y" * 60
    train = write_csv(tmp_path / "train.csv", train_rows)
    validation_rows = good_rows(2, tag="validation ")
    validation_rows[3]["text"] = "a very long validation question " + "z" * 60
    validation = write_csv(tmp_path / "validation.csv", validation_rows)
    test = write_csv(tmp_path / "test.csv", good_rows(2, tag="test "))

    with pytest.warns(LongTextWarning) as record:
        prepared = run_prepare(train, tmp_path, validation_file=str(validation), test_file=str(test), max_chars=50)
    messages = [str(w.message) for w in record if issubclass(w.category, LongTextWarning)]
    assert any("2 texts of the train split are longer than 50 characters (rows 1, 15)" in m for m in messages)
    assert any("1 texts of the validation split are longer than 50 characters (rows 4)" in m for m in messages)
    assert not any("test split" in m for m in messages)

    assert prepared.manifest["long_texts"] == {"max_chars": 50, "train": 2, "validation": 1, "test": 0}
    # the long rows are kept, unchanged
    assert train_rows[0]["text"] in set(prepared.splits["train"].text)
    assert train_rows[14]["text"] in set(prepared.splits["train"].text)
    assert validation_rows[3]["text"] in set(prepared.splits["validation"].text)
    assert prepared.manifest["counts"] == {"train": 36, "validation": 6, "test": 6}


def test_long_texts_in_a_single_file_warn_and_are_kept(tmp_path: Path):
    rows = good_rows()
    long_texts = [f"{'a very long returns question ' * 3}{i}" for i in range(3)]
    for i, text in zip((24, 25, 26), long_texts): rows[i]["text"] = text
    path = write_csv(tmp_path / "long.csv", rows)
    with pytest.warns(LongTextWarning, match=r"3 texts of the train split are longer than 60 characters \(rows 25, 26, 27\)"):
        prepared = run_prepare(path, tmp_path, max_chars=60)
    kept = pd.concat([prepared.splits[s] for s in SPLITS])
    assert set(long_texts) <= set(kept.text)
    assert len(kept) == 36
    assert prepared.manifest["long_texts"]["max_chars"] == 60
    # the file is the source's one raw split; all 3 overlong texts are counted
    assert prepared.manifest["long_texts"]["train"] == 3


def test_long_text_counts_describe_the_output_splits(tmp_path: Path):
    rows = good_rows()
    for row in rows:
        if row["label"] == "returns": row["text"] = row["text"] + " " + "w" * 60  # all 12 returns texts are long
    path = write_csv(tmp_path / "long_class.csv", rows)
    with pytest.warns(LongTextWarning):
        prepared = run_prepare(path, tmp_path, max_chars=50)
    actual = {s: int((prepared.splits[s].text.str.len() > 50).sum()) for s in SPLITS}
    assert sum(actual.values()) == 12
    assert {s: prepared.manifest["long_texts"].get(s) for s in SPLITS} == actual  # manifest: {'train': 12}


# ----------------------------------------------------------------------------------------------- drop mode
def test_drop_mode_drops_bad_rows_and_counts_them_by_reason(tmp_path: Path):
    records: list[dict[str, Any]] = good_rows(14)
    records.append(dict(records[0]))                              # exact duplicate
    bad = [{"text": 42, "label": "billing"},                      # non-string text
           {"text": ["a", "list"], "label": "shipping"},          # non-string text
           {"text": 7, "label": None},                            # non-string text AND no label: counted once
           {"text": "   ", "label": "shipping"},                  # empty text
           {"text": None, "label": "returns"},                    # empty (null) text
           {"text": "a fine text without a label", "label": None},  # missing label
           {"text": "another fine text, empty label", "label": " "}]  # missing label
    records = records[:5] + bad + records[5:]
    path = write_jsonl(tmp_path / "dirty.jsonl", records)

    with pytest.raises(NonStringTextError):  # the same file fails in the default mode
        run_prepare(path, tmp_path)
    assert_no_data_written(tmp_path)

    prepared = run_prepare(path, tmp_path, on_bad_rows="drop")
    manifest = prepared.manifest
    assert manifest["dropped"] == {"train": {"duplicate": 1, "empty_text": 2, "missing_label": 2, "non_string_text": 3}}
    assert list(manifest["dropped"]["train"]) == sorted(manifest["dropped"]["train"])
    kept = pd.concat([prepared.splits[s] for s in SPLITS])
    assert len(kept) == sum(manifest["counts"].values()) == 42
    assert set(kept.label) == set(LABELS)
    assert all(isinstance(t, str) and t.strip() for t in kept.text)
    assert "a fine text without a label" not in set(kept.text)
    assert manifest["params"]["on_bad_rows"] == "drop"
    assert (tmp_path / "run" / "data" / "manifest.json").is_file()


# ----------------------------------------------------------------------------------------------- crash safety
class SimulatedCrash(RuntimeError):
    pass


def _crash_on_nth_parquet(monkeypatch, n: int):
    real = pd.DataFrame.to_parquet
    calls = {"n": 0}
    def to_parquet(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= n: raise SimulatedCrash(f"simulated crash writing parquet file {calls['n']}")
        return real(self, *args, **kwargs)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    return calls


def _crash_on_manifest(monkeypatch):
    def atomic_write_json(path, obj):
        raise SimulatedCrash("simulated crash writing the manifest")
    monkeypatch.setattr(data_module, "atomic_write_json", atomic_write_json)


def _snapshot(data_dir: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(data_dir.iterdir())}


@pytest.mark.parametrize("crash", ["second_parquet_file", "first_parquet_file", "manifest"])
def test_crash_while_rewriting_keeps_the_previous_data_folder(crash: str, tmp_path: Path, monkeypatch):
    path = write_csv(tmp_path / "intents.csv", good_rows())
    first = run_prepare(path, tmp_path)
    data_dir = tmp_path / "run" / "data"
    before = _snapshot(data_dir)
    assert set(before) == {"manifest.json", *(f"{s}.parquet" for s in SPLITS)}

    if crash == "manifest": _crash_on_manifest(monkeypatch)
    else: calls = _crash_on_nth_parquet(monkeypatch, 2 if crash == "second_parquet_file" else 1)
    with pytest.raises(SimulatedCrash):
        run_prepare(path, tmp_path, seed=7)  # a different split: it would change the data if it got through
    if crash == "second_parquet_file": assert calls["n"] == 2  # the first file was written before the crash
    monkeypatch.undo()

    assert _snapshot(data_dir) == before
    splits = load_splits(data_dir)  # verifies every file against the manifest's sha256
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == first.manifest["version"]
    assert manifest["params"]["seed"] == 42
    for split in SPLITS:
        assert splits[split].text.tolist() == first.splits[split].text.tolist()
    assert leftovers(tmp_path / "run") == []


@pytest.mark.parametrize("crash", ["second_parquet_file", "manifest"])
def test_crash_on_the_first_write_leaves_no_data_folder(crash: str, tmp_path: Path, monkeypatch):
    path = write_csv(tmp_path / "intents.csv", good_rows())
    if crash == "manifest": _crash_on_manifest(monkeypatch)
    else: _crash_on_nth_parquet(monkeypatch, 2)
    with pytest.raises(SimulatedCrash):
        run_prepare(path, tmp_path)
    assert_no_data_written(tmp_path)
    assert not (tmp_path / "run" / "params.json").exists()  # params are recorded only after the data


def test_failed_final_rename_restores_the_previous_data_folder(tmp_path: Path, monkeypatch):
    path = write_csv(tmp_path / "intents.csv", good_rows())
    first = run_prepare(path, tmp_path)
    data_dir = tmp_path / "run" / "data"
    before = _snapshot(data_dir)

    real_replace = os.replace
    def replace(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".data.tmp-") and Path(dst).name == "data":
            raise SimulatedCrash("simulated failure of the final rename")
        return real_replace(src, dst, *args, **kwargs)
    monkeypatch.setattr(data_module.os, "replace", replace)
    with pytest.raises(SimulatedCrash):
        run_prepare(path, tmp_path, seed=7)
    monkeypatch.undo()

    assert data_dir.is_dir()  # actual: data/ is gone, the old one sits in .data.old-<pid>
    assert _snapshot(data_dir) == before
    assert read_version(data_dir) == first.manifest["version"]
    assert leftovers(tmp_path / "run") == []


def read_version(data_dir: Path) -> str:
    return json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))["version"]
