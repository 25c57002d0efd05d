"""Spans, BIO tags and normalisation (chapter 1a): round trips, the repair rule, and offsets kept through NFKC and
whitespace collapsing."""
from __future__ import annotations

import random
import unicodedata

import pytest

from ainative.core import DataValidationError, normalize_text
from ainative.spans import (OUTSIDE, Span, align_normalized, bio_tags, bio_to_spans, check_spans, entity_conflicts,
                            normalize_spans, span_records, spans_from_records, spans_to_bio, split_tag, word_offsets)


@pytest.mark.parametrize("tags", [
    "O O O", "B-a O O", "B-a I-a I-a", "B-a B-a B-b", "O B-a I-a O B-b", "B-a I-a B-a I-a", "B-x_y I-x_y O",
])
def test_valid_bio_round_trips(tags):
    words = ["alpha", "b", "gamma"] if len(tags.split()) == 3 else [f"w{i}" for i in range(len(tags.split()))]
    rebuilt = bio_to_spans(words, tags.split())
    assert rebuilt.text == " ".join(words) and rebuilt.repaired == 0
    assert spans_to_bio(rebuilt.text, rebuilt.spans, word_offsets(rebuilt.text)) == tags.split()
    assert bio_to_spans(words, spans_to_bio(rebuilt.text, rebuilt.spans, word_offsets(rebuilt.text))).spans == rebuilt.spans


@pytest.mark.parametrize("tags, repaired_tags, repairs", [
    ("I-a I-a O", "B-a I-a O", 1),           # first in the sentence
    ("O I-a I-a", "O B-a I-a", 1),           # after O
    ("B-a I-b I-b", "B-a B-b I-b", 1),       # after another type
    ("I-a O I-a", "B-a O B-a", 2),
])
def test_i_starts_are_repaired_as_b(tags, repaired_tags, repairs):
    words = ["one", "two", "three"]
    rebuilt = bio_to_spans(words, tags.split())
    assert rebuilt.repaired == repairs
    assert spans_to_bio(rebuilt.text, rebuilt.spans, word_offsets(rebuilt.text)) == repaired_tags.split()


def test_random_tag_sequences_round_trip_after_repair():
    generator = random.Random(7)
    for _ in range(500):
        n = generator.randint(0, 12)
        words = ["".join(generator.choice("abcdé…") for _ in range(generator.randint(1, 5))) for _ in range(n)]
        tags = [generator.choice(["O", "B-a", "I-a", "B-b", "I-b"]) for _ in range(n)]
        rebuilt = bio_to_spans(words, tags)
        check_spans(rebuilt.text, rebuilt.spans)
        repaired = spans_to_bio(rebuilt.text, rebuilt.spans, word_offsets(rebuilt.text))
        assert sum(a != b for a, b in zip(tags, repaired)) == rebuilt.repaired  # each repair changed one I- into B-
        assert bio_to_spans(words, repaired) == (rebuilt.text, rebuilt.spans, 0)


@pytest.mark.parametrize("words, tags, expected", [
    (["a", "b"], ["O"], "2 words but 1 tags"),
    (["a"], ["E-city"], "not a BIO tag"),
    (["a"], ["city"], "not a BIO tag"),
    (["a"], ["B-"], "not a BIO tag"),
    (["a b"], ["O"], "holds whitespace"),
    ([""], ["O"], "is empty"),
])
def test_bad_words_and_tags(words, tags, expected):
    with pytest.raises(DataValidationError) as info:
        bio_to_spans(words, tags, where="x.conll, line 3")
    assert expected in info.value.what and info.value.where.startswith("x.conll, line 3")


def test_split_tag_and_tag_set():
    assert split_tag(OUTSIDE) == ("O", "") and split_tag("I-time_range") == ("I", "time_range")
    assert split_tag("B-a-b") == ("B", "a-b")  # a type may hold a hyphen
    assert bio_tags(["b", "a"]) == ["O", "B-a", "I-a", "B-b", "I-b"]


def test_spans_to_bio_refuses_what_words_cannot_express():
    text = "fly to bostonian shores"
    with pytest.raises(DataValidationError, match="word boundaries"):
        spans_to_bio(text, [Span(7, 13, "city")], word_offsets(text))
    with pytest.raises(DataValidationError, match="shares a word"):
        spans_to_bio(text, [Span(7, 16, "city"), Span(7, 16, "place")], word_offsets(text))
    finer = [(0, 3), (4, 6), (7, 13), (13, 16), (17, 23)]  # a tokenizer that splits "boston|ian"
    assert spans_to_bio(text, [Span(7, 13, "city")], finer) == ["O", "O", "B-city", "O", "O"]


def test_records_round_trip():
    spans = [Span(0, 3, "a"), Span(4, 9, "b")]
    assert spans_from_records(span_records(spans)) == spans
    assert span_records(spans)[0] == {"start": 0, "end": 3, "label": "a"}


# --- normalisation keeps the spans ------------------------------------------------------------------------------------

SURPRISES = ["…", "ﬁ", "½", "Ｗ", "\u00a0", "\t", "  ", "e\u0301", "\u1100\u1161\u11a8", "㍱", "¨", "①", "ǅ", "\u2028", "😀"]


def test_alignment_is_normalize_text_exactly():
    generator = random.Random(11)
    for _ in range(2000):
        text = "".join(generator.choice(SURPRISES + ["a", "b", " ", "x"]) for _ in range(generator.randint(0, 14)))
        normalized, origins = align_normalized(text)
        assert normalized == normalize_text(text), repr(text)
        assert len(origins) == len(normalized)
        assert all(0 <= start < end <= len(text) for start, end in origins)
        assert [start for start, _ in origins] == sorted(start for start, _ in origins)


def test_spans_follow_the_characters_they_cover():
    generator = random.Random(3)
    for _ in range(1000):
        pieces = [generator.choice(SURPRISES + ["  ", " "]) for _ in range(generator.randint(0, 4))]
        word = "".join(generator.choice(["ab", "ﬁ", "Ｗx", "é", "…"]) for _ in range(generator.randint(1, 3)))
        before, after = "".join(pieces), "".join(generator.choice(SURPRISES) for _ in range(generator.randint(0, 3)))
        text = f"{before} {word} {after}"
        span = Span(len(before) + 1, len(before) + 1 + len(word), "thing")
        normalized, (moved,) = normalize_spans(text, [span])
        assert normalized == normalize_text(text)
        assert moved.value(normalized) == normalize_text(word), (text, moved)


def test_span_with_careless_whitespace_is_trimmed():
    text = "play  regulate…g funk era   by warren g "
    normalized, (album,) = normalize_spans(text, [Span(6, 27, "album")])
    assert album.value(normalized) == "regulate...g funk era"


def test_normalised_text_is_returned_unchanged():
    spans = [Span(3, 9, "city")]
    assert normalize_spans("to Boston", spans) == ("to Boston", spans)


def test_entity_conflicts_list_the_variants():
    found = entity_conflicts(["a b", "a b", "c"], ["x", "x", "x"], [[Span(0, 1, "p")], [Span(2, 3, "p")], []], "test")
    assert found == [{"split": "test", "text": "a b", "label": "x",
                      "entities": [[{"start": 0, "end": 1, "label": "p"}], [{"start": 2, "end": 3, "label": "p"}]]}]
    assert entity_conflicts(["a b", "a b"], ["x", "y"], [[Span(0, 1, "p")], []]) == []  # another intent: a label conflict
    assert unicodedata.is_normalized("NFKC", "a b")
