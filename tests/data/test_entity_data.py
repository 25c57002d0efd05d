"""The data stage with entities (issue 28): JSONL and CoNLL files as sources, the `entities` column through cleaning,
splitting, the parquet files and `load_splits`, and the manifest's `entities` entry."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ainative.core import DataSourceError, DataValidationError, MissingLabelError
from ainative.data import SPLITS, DataConfig, clean_splits, load_splits, prepare_data, read_manifest, read_table
from ainative.spans import Span, bio_tags

CITIES = ["Boston", "Paris", "Lima", "Oslo"]


def annotated_rows(n: int = 24, with_intents: bool = True) -> list[dict]:
    rows = []
    for i in range(n):
        city = CITIES[i % 4]
        intent = ("track", "reroute")[i % 2]
        text = f"send parcel {i} to {city}" if intent == "reroute" else f"where is parcel {i} from {city}"
        number = text.index(f" {i} ") + 1
        entities = [{"start": text.index(city), "end": len(text), "label": "city"},
                    {"start": number, "end": number + len(str(i)), "label": "parcel"}]
        rows.append({"text": text, **({"intent": intent} if with_intents else {}), "entities": entities})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_conll(path: Path, rows: list[dict], intents: bool) -> Path:
    lines = []
    for row in rows:
        if intents: lines.append(f"# intent = {row['intent']}")
        for word in row["text"].split():
            label = next((e["label"] for e in row["entities"] if row["text"][e["start"]:e["end"]] == word), None)
            lines.append(f"{word}\t{'I-' + label if label == 'city' else 'B-' + label if label else 'O'}")  # cities as IOB1
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def jsonl_run(tmp_path):
    path = write_jsonl(tmp_path / "parcels.jsonl", annotated_rows())
    return prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))


def test_jsonl_with_spans_is_a_source(jsonl_run):
    manifest = jsonl_run.manifest
    assert manifest["label2id"] == {"reroute": 0, "track": 1}
    assert sum(manifest["counts"].values()) == 24
    for split in SPLITS:
        frame = jsonl_run.splits[split]
        assert list(frame.columns) == ["text", "label", "row", "entities"]
        for text, spans in zip(frame.text, frame.entities):
            assert [span.value(text) for span in spans if span.label == "city"] == [text.split()[-1]]


def test_manifest_records_slot_labels_counts_and_repairs(jsonl_run):
    entities = read_manifest(jsonl_run.run.data)["entities"]
    assert entities["slot_labels"] == ["city", "parcel"]  # sorted, no "O"
    assert bio_tags(entities["slot_labels"]) == ["O", "B-city", "I-city", "B-parcel", "I-parcel"]
    assert entities["repaired_tags"] == {"total": 0, "train": 0}
    assert {split: sum(counts.values()) for split, counts in entities["span_counts"].items()} == \
        {split: 2 * n for split, n in jsonl_run.manifest["counts"].items()}
    assert entities["unseen_slot_labels"] == {}


def test_parquet_files_carry_the_entities_and_load_splits_returns_spans(jsonl_run):
    stored = pd.read_parquet(jsonl_run.run.data / "test.parquet")
    assert list(stored.columns) == ["text", "label", "label_id", "entities"]
    assert set(stored.entities.iloc[0][0]) == {"start", "end", "label"}
    loaded = load_splits(jsonl_run.run.data)
    for split in SPLITS:
        assert loaded[split].entities.tolist() == jsonl_run.splits[split].entities.tolist()
        assert all(isinstance(span, Span) for spans in loaded[split].entities for span in spans)


def test_a_changed_annotation_changes_the_version(tmp_path, jsonl_run):
    rows = annotated_rows()
    rows[5]["entities"][1]["label"] = "parcel_id"
    changed = prepare_data(DataConfig(dataset=str(write_jsonl(tmp_path / "parcels.jsonl", rows)), run_dir=str(tmp_path / "other")))
    assert changed.manifest["version"] != jsonl_run.manifest["version"]
    again = prepare_data(DataConfig(dataset=str(write_jsonl(tmp_path / "parcels.jsonl", annotated_rows())), run_dir=str(tmp_path / "again")))
    assert again.manifest["version"] == jsonl_run.manifest["version"]


def test_conll_file_with_intent_comments_and_iob1_repairs(tmp_path):
    path = write_conll(tmp_path / "parcels.conll", annotated_rows(), intents=True)
    prepared = prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))
    manifest = prepared.manifest
    assert manifest["num_labels"] == 2 and manifest["entities"]["slot_labels"] == ["city", "parcel"]
    assert manifest["entities"]["repaired_tags"] == {"total": 24, "train": 24}  # every city started with I-
    assert manifest["source"]["kind"] == "file" and manifest["source"]["name"] == "parcels.conll"


def test_ner_only_conll_runs_through_the_stage(tmp_path):
    path = write_conll(tmp_path / "ner.conll", annotated_rows(30), intents=False)
    prepared = prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))
    manifest = prepared.manifest
    assert manifest["num_labels"] == 0 and manifest["label2id"] == {} and manifest["label_counts"]["train"] == {}
    assert manifest["counts"] == {"train": 21, "validation": 6, "test": 3}
    loaded = load_splits(prepared.run.data)
    assert {split: len(frame) for split, frame in loaded.items()} == manifest["counts"]
    assert loaded["train"].label.isna().all() and (loaded["train"].label_id == -1).all()
    assert all(spans for spans in loaded["test"].entities)


def test_ner_only_jsonl_runs_through_the_stage(tmp_path):
    path = write_jsonl(tmp_path / "ner.jsonl", annotated_rows(20, with_intents=False))
    prepared = prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))
    assert prepared.manifest["num_labels"] == 0 and sum(prepared.manifest["counts"].values()) == 20


def test_some_intents_missing_is_still_an_error(tmp_path):
    rows = annotated_rows()
    del rows[3]["intent"]
    with pytest.raises(MissingLabelError) as info:
        prepare_data(DataConfig(dataset=str(write_jsonl(tmp_path / "half.jsonl", rows)), run_dir=str(tmp_path / "run")))
    assert "rows 4" in info.value.where


def test_bad_span_in_a_source_file_names_the_line(tmp_path):
    rows = annotated_rows()
    rows[7]["entities"][0]["end"] = 99
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataValidationError) as info:
        prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run")))
    assert info.value.where == f"{path}, line 8" and "outside the text" in info.value.what


def test_cleaning_moves_spans_and_keeps_entity_conflicts():
    raw = pd.DataFrame({"text": ["fly\u00a0to  Ｂoston", "fly to Boston", "fly to Boston", "fly to Boston"],
                        "label": ["travel"] * 4, "row": [1, 2, 3, 4],
                        "entities": [[Span(8, 14, "city")], [Span(7, 13, "city")], [Span(7, 13, "destination")], []]})
    cleaned, report = clean_splits({"train": raw})
    train = cleaned["train"]
    assert train.text.tolist() == ["fly to Boston"] * 3
    assert train.entities.tolist() == [[Span(7, 13, "city")], [Span(7, 13, "destination")], []]
    assert report.dropped == {"train": {"duplicate": 1}}
    (conflict,) = report.conflicts
    assert conflict["text"] == "fly to Boston" and len(conflict["entities"]) == 3


def test_conflicts_reach_the_manifest(tmp_path):
    rows = annotated_rows()
    rows.append({**rows[0], "entities": rows[0]["entities"][:1]})  # the same text and intent, one entity fewer
    prepared = prepare_data(DataConfig(dataset=str(write_jsonl(tmp_path / "c.jsonl", rows)), run_dir=str(tmp_path / "run")))
    conflicts = prepared.manifest["conflicts"]
    assert conflicts["count"] == 1 and conflicts["examples"][0]["text"] == rows[0]["text"]
    assert sum(prepared.manifest["counts"].values()) == 25  # both kept


def test_read_table_on_entity_files(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "to Boston", "label": "travel", "entities": [{"start": 3, "end": 9, "label": "city"}]}])
    table = read_table(path)
    assert table.label.tolist() == ["travel"] and table.entities.tolist() == [[Span(3, 9, "city")]]
    renamed = write_jsonl(tmp_path / "b.jsonl", [{"utterance": "to Boston", "goal": "travel", "entities": []}])
    assert read_table(renamed, text_column="utterance", label_column="goal").label.tolist() == ["travel"]


def test_split_files_of_different_kinds_are_refused(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", annotated_rows())
    test = tmp_path / "test.csv"
    test.write_text("text,label\nwhere is parcel 99 from Rome,track\n", encoding="utf-8")
    with pytest.raises(DataSourceError) as info:
        prepare_data(DataConfig(dataset=str(train), test_file=str(test), run_dir=str(tmp_path / "run")))
    assert "train: train.jsonl" in info.value.where and "test: test.csv" in info.value.where
