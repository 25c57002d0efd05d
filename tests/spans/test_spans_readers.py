"""The readers of annotated files (chapter 1a) on small files written in tmp_path: SNIPS/ATIS folders, JSONL with
character spans, CoNLL; the good files, and the bad lines each error must name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ainative.core import DataEncodingError, DataFileNotFoundError, DataValidationError
from ainative.spans import Span, read_conll, read_snips, read_span_jsonl


def snips_folder(folder: Path, words: list[str], tags: list[str], intents: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text("".join(line + "\n" for line in words), encoding="utf-8")
    (folder / "seq.out").write_text("".join(line + "\n" for line in tags), encoding="utf-8")
    if intents is not None: (folder / "label").write_text("".join(line + "\n" for line in intents), encoding="utf-8")
    return folder


def jsonl(path: Path, *records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def values(example) -> list[tuple[str, str]]:
    return [(span.label, span.value(example.text)) for span in example.spans]


# --- SNIPS / ATIS folders ---------------------------------------------------------------------------------------------

def test_snips_folder_rebuilds_text_and_offsets(tmp_path):
    folder = snips_folder(tmp_path / "train",
                          ["add step to me to the 50 clásicos playlist ", "i need a forecast for jetmore  massachusetts"],
                          ["O B-entity_name I-entity_name I-entity_name O O B-playlist I-playlist O ", "O O O O O B-city B-state"],
                          ["AddToPlaylist", "GetWeather"])
    first, second = read_snips(folder)
    assert first.text == "add step to me to the 50 clásicos playlist"  # the trailing space is gone
    assert values(first) == [("entity_name", "step to me"), ("playlist", "50 clásicos")]
    assert second.text == "i need a forecast for jetmore massachusetts"  # two spaces were no empty word
    assert values(second) == [("city", "jetmore"), ("state", "massachusetts")]
    assert (first.intent, second.intent, first.line, second.line) == ("AddToPlaylist", "GetWeather", 1, 2)
    assert first.repaired == second.repaired == 0


def test_snips_i_start_is_repaired_and_counted(tmp_path):
    folder = snips_folder(tmp_path / "train", ["play some jazz now"], ["O O I-genre I-time"], ["PlayMusic"])
    (example,) = read_snips(folder)
    assert values(example) == [("genre", "jazz"), ("time", "now")]  # a type change starts an entity too
    assert example.repaired == 2


def test_snips_word_and_tag_counts_that_differ_name_the_line(tmp_path):
    folder = snips_folder(tmp_path / "valid", ["to boston", "from paris to rome"], ["O B-city", "O B-city O"], ["A", "B"])
    with pytest.raises(DataValidationError) as info:
        read_snips(folder)
    assert "4 words but 3 tags" in info.value.what
    assert info.value.where.endswith("seq.in and seq.out, line 2") and info.value.fix


def test_snips_files_of_different_lengths(tmp_path):
    folder = snips_folder(tmp_path / "test", ["to boston", "to paris"], ["O B-city"], ["A", "B"])
    with pytest.raises(DataValidationError) as info:
        read_snips(folder)
    assert "seq.in has 2 lines, seq.out 1, label 2" in info.value.what and info.value.where == str(folder)


def test_snips_folder_without_labels_is_ner_only(tmp_path):
    (example,) = read_snips(snips_folder(tmp_path / "train", ["to boston"], ["O B-city"]))
    assert example.intent is None and values(example) == [("city", "boston")]


def test_snips_missing_file(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "seq.in").write_text("to boston\n")
    with pytest.raises(DataFileNotFoundError) as info:
        read_snips(tmp_path / "train")
    assert "seq.out" in info.value.what


def test_snips_tag_that_is_not_bio(tmp_path):
    folder = snips_folder(tmp_path / "train", ["to boston"], ["O S-city"], ["A"])
    with pytest.raises(DataValidationError) as info:
        read_snips(folder)
    assert "'S-city' is not a BIO tag" in info.value.what and "BIOES" in info.value.fix
    assert "line 1" in info.value.where and info.value.where.endswith("tag 2")


# --- JSONL with character spans --------------------------------------------------------------------------------------

def test_jsonl_reads_spans_intents_and_ner_only_records(tmp_path):
    path = jsonl(tmp_path / "a.jsonl",
                 {"text": "move my delivery to Friday", "intent": "reschedule", "entities": [{"start": 20, "end": 26, "label": "day"}]},
                 "",
                 {"text": "Boston, please", "entities": [{"start": 0, "end": 6, "label": "city"}]},
                 {"text": "no entities here", "intent": "chitchat"})
    moved, ner_only, plain = read_span_jsonl(path)
    assert values(moved) == [("day", "Friday")] and moved.intent == "reschedule"
    assert (ner_only.intent, ner_only.line, values(ner_only)) == (None, 3, [("city", "Boston")])
    assert plain.spans == [] and plain.intent == "chitchat"


def test_jsonl_intent_keys_in_order(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", {"text": "to Boston", "label": "travel", "intent": "other", "entities": []})
    assert read_span_jsonl(path, intent_keys=("label", "intent"))[0].intent == "travel"
    assert read_span_jsonl(path)[0].intent == "other"


@pytest.mark.parametrize("entities, expected", [
    ([{"start": 3, "end": 12, "label": "city"}], "lies outside the text, which has 9 characters"),
    ([{"start": 3, "end": 3, "label": "city"}], "is empty"),
    ([{"start": 2, "end": 3, "label": "city"}], "covers only whitespace"),
    ([{"start": 3, "end": 9, "label": "city"}, {"start": 5, "end": 9, "label": "place"}], "overlap"),
    ([{"start": "3", "end": 9, "label": "city"}], "offsets must be whole numbers"),
    ([{"start": 3.0, "end": 9, "label": "city"}], "offsets must be whole numbers"),
    ([{"end": 9, "label": "city"}], "offsets must be whole numbers"),
    ([{"start": 3, "end": 9}], "has no type"),
    ([{"start": 3, "end": 9, "label": "O"}], "BIO's tag for words outside"),
    ([{"start": 3, "end": 9, "label": "home town"}], "whitespace"),
    ([[3, 9, "city"]], "not an object"),
    ({"start": 3, "end": 9, "label": "city"}, "not a list"),
])
def test_jsonl_bad_spans_name_the_line(tmp_path, entities, expected):
    path = jsonl(tmp_path / "bad.jsonl", {"text": "ok", "entities": []}, {"text": "to Boston", "entities": entities})
    with pytest.raises(DataValidationError) as info:
        read_span_jsonl(path)
    assert expected in info.value.what
    assert info.value.where == f"{path}, line 2" and info.value.fix


def test_jsonl_utf16_offsets_get_a_hint(tmp_path):
    text = "📦 where is my parcel? to Boston"
    start = len(text.encode("utf-16-le")) // 2 - 6  # what a JavaScript tool counts
    path = jsonl(tmp_path / "ls.jsonl", {"text": text, "entities": [{"start": start, "end": start + 6, "label": "city", "text": "Boston"}]})
    with pytest.raises(DataValidationError) as info:
        read_span_jsonl(path)
    assert "UTF-16 code units" in info.value.fix


def test_jsonl_value_that_matches_is_accepted(tmp_path):
    path = jsonl(tmp_path / "ok.jsonl", {"text": "to Boston", "entities": [{"start": 3, "end": 9, "label": "city", "value": "Boston"}]})
    assert read_span_jsonl(path)[0].spans == [Span(3, 9, "city")]


def test_jsonl_broken_line_and_entities_without_text(tmp_path):
    with pytest.raises(DataEncodingError) as info:
        read_span_jsonl(jsonl(tmp_path / "broken.jsonl", {"text": "fine", "entities": []}, '{"text": "cut'))
    assert "Line 2 is not valid JSON" in info.value.what
    with pytest.raises(DataValidationError) as info:
        read_span_jsonl(jsonl(tmp_path / "notext.jsonl", {"utterance": "to Boston", "entities": [{"start": 3, "end": 9, "label": "city"}]}))
    assert "no text under 'text'" in info.value.what and info.value.where.endswith("line 1")


# --- CoNLL -------------------------------------------------------------------------------------------------------------

def test_conll_without_a_trailing_blank_line(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
                    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER", encoding="utf-8")
    news, peter = read_conll(path)
    assert news.text == "EU rejects German" and values(news) == [("ORG", "EU"), ("MISC", "German")]
    assert values(peter) == [("PER", "Peter Blackburn")] and peter.line == 7
    assert news.intent is None and peter.intent is None


def test_conll_iob1_is_repaired_and_counted(tmp_path):
    path = tmp_path / "iob1.conll"
    path.write_text("EU\tI-ORG\nrejects\tO\nGerman\tI-MISC\ncall\tO\nto\tO\nboycott\tO\nBritish\tI-MISC\nlamb\tO\n\n", encoding="utf-8")
    (news,) = read_conll(path)
    assert values(news) == [("ORG", "EU"), ("MISC", "German"), ("MISC", "British")] and news.repaired == 3


def test_conll_intent_comment_applies_to_the_next_sentence_only(tmp_path):
    path = tmp_path / "intents.conll"
    path.write_text("# sent_id = 1\n# intent = BookRestaurant\nbook O\nfor O\nfour B-party_size\n\n"
                    "to O\nboston B-city\n\n# intent = GetWeather\n# text = rain in oslo\nrain O\nin O\noslo B-city\n", encoding="utf-8")
    booking, bare, weather = read_conll(path)
    assert (booking.intent, bare.intent, weather.intent) == ("BookRestaurant", None, "GetWeather")
    assert booking.line == 3 and weather.line == 12


def test_conll_hash_token_is_a_token(tmp_path):
    path = tmp_path / "hash.conll"
    path.write_text("# O\n1 O\nboston B-city\n", encoding="utf-8")
    (example,) = read_conll(path)
    assert example.text == "# 1 boston" and values(example) == [("city", "boston")]


@pytest.mark.parametrize("content, line, expected", [
    ("to O\nboston E-city\n", 2, "not a BIO tag"),
    ("to O\nboston\n", 2, "has one column"),
    ("to O\n\n\nfrom O\nparis B-\n", 5, "not a BIO tag"),
])
def test_conll_bad_lines_are_named(tmp_path, content, line, expected):
    path = tmp_path / "bad.conll"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        read_conll(path)
    assert expected in info.value.what and info.value.where == f"{path}, line {line}"


def test_conll_not_utf8(tmp_path):
    path = tmp_path / "latin.conll"
    path.write_bytes("Zürich B-city\n".encode("latin-1"))
    with pytest.raises(DataEncodingError):
        read_conll(path)
    assert read_conll(path, encoding="latin-1")[0].text == "Zürich"
