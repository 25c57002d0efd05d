"Word alignment, tag labels and decoding of the joint model: offsets into the text as given."
import numpy as np
import pytest
import torch

from ainative.joint import JointCollator, joint_features, predict_joint
from ainative.tagging import decode_words, encode_words, tag_labels, tags_to_entities, word_tags
from ainative.spans import Span, bio_tags

TAGS = bio_tags(["city", "day", "restaurant"])
TAG2ID = {tag: i for i, tag in enumerate(TAGS)}


def spans_of(text, *pieces):
    "Spans of each (substring, label), found left to right."
    spans, start = [], 0
    for value, label in pieces:
        start = text.index(value, start)
        spans.append(Span(start, start + len(value), label))
        start += len(value)
    return spans


def round_trip(tokenizer, text, spans):
    "Gold spans -> word tags -> one-hot first-sub-word probabilities -> decoded entities."
    encoding = encode_words(tokenizer, [text])[0]
    labels = tag_labels(encoding, word_tags(encoding.words, spans), TAG2ID)
    probabilities = np.zeros((len(labels), len(TAGS)))
    probabilities[:, 0] = 1
    for position, label in enumerate(labels):
        if label != -100: probabilities[position] = np.eye(len(TAGS))[label]
    return tags_to_entities(encoding.words, *decode_words(probabilities, encoding, TAGS))


@pytest.mark.parametrize("text, pieces", [
    ("table at Dean's in   Boston, friday!", [("Dean's", "restaurant"), ("Boston", "city"), ("friday", "day")]),
    ("  leading and trailing  spaces in Oslo  ", [("Oslo", "city")]),
    ("ＦＵＬＬ width Ｔｏｋｙｏ and café in São Paulo", [("Ｔｏｋｙｏ", "city"), ("São Paulo", "city")]),
    ("emoji 🙂 before Lima 🙂 after", [("Lima", "city")]),
    ("ligature ﬁnland trip to New York", [("New York", "city")]),
    ("supercalifragilisticexpialidocious city named Xanadu-upon-Thames", [("Xanadu-upon-Thames", "city")]),
])
def test_gold_spans_round_trip_with_offsets_into_the_text(tokenizer, text, pieces):
    spans = spans_of(text, *pieces)
    entities = round_trip(tokenizer, text, spans)
    assert [e.span for e in entities] == spans
    assert [e.to_dict(text)["value"] for e in entities] == [value for value, _ in pieces]
    assert all(e.confidence == 1.0 for e in entities)


def test_one_label_per_word_on_its_first_sub_word(tokenizer):
    text = "supercalifragilisticexpialidocious in Boston"
    encoding = encode_words(tokenizer, [text])[0]
    labels = tag_labels(encoding, word_tags(encoding.words, spans_of(text, ("Boston", "city"))), TAG2ID)
    assert sum(label != -100 for label in labels) == len(encoding.words) == 3
    first, second = encoding.first_tokens[:2]
    assert second - first > 1 and all(label == -100 for label in labels[first + 1: second])
    assert labels[0] == labels[-1] == -100  # [CLS] and [SEP]
    assert labels[encoding.first_tokens[2]] == TAG2ID["B-city"]


def test_span_inside_a_word_takes_the_whole_word(tokenizer):
    encoding = encode_words(tokenizer, ["order A2231x now"])[0]
    assert word_tags(encoding.words, [Span(7, 11, "day")]) == ["O", "B-day", "O"]


def test_truncated_words_are_outside_and_counted(tokenizer):
    text = " ".join(["boston"] * 50)
    encoding = encode_words(tokenizer, [text], max_length=16)[0]
    assert len(encoding.input_ids) == 16 and encoding.truncated
    assert sum(first is not None for first in encoding.first_tokens) == 14
    tags, _ = decode_words(np.full((16, len(TAGS)), 1.0 / len(TAGS)), encoding, TAGS)
    assert len(tags) == 50 and set(tags[14:]) == {"O"}


def test_features_and_collator_pad_labels_with_ignore(tokenizer):
    texts = ["fly to Boston", "weather"]
    features = joint_features(tokenizer, texts, [0, -1], [spans_of(texts[0], ("Boston", "city")), []], TAG2ID)
    assert features["labels"] == [0, -100] and features.pop("truncated") == [False, False]
    batch = JointCollator(tokenizer.pad_token_id)([dict(zip(features, row)) for row in zip(*features.values())])
    assert batch["input_ids"].shape == batch["tag_labels"].shape == (2, 5)
    assert batch["tag_labels"][1].tolist() == [-100, TAG2ID["O"], -100, -100, -100]
    assert batch["attention_mask"].sum().item() == 5 + 3


def test_predictions_of_a_tiny_model_index_the_text(tokenizer, tiny_base_dir):
    from ainative.joint import load_joint_model
    model = load_joint_model(str(tiny_base_dir), {"a": 0, "b": 1}, TAGS)
    torch.manual_seed(0)
    with torch.no_grad(): model.tagger.bias.copy_(torch.tensor([0.0] + [3.0] + [0.0] * (len(TAGS) - 2)))  # B-city everywhere
    texts = ["fly  to Boston!", "ＦＵＬＬ width"]
    prediction = predict_joint(model, tokenizer, texts)
    for text, entities, encoding in zip(texts, prediction.entities, prediction.encodings):
        assert [e.span for e in entities] == [Span(s, e, "city") for s, e in encoding.words]
        assert all(text[e.span.start:e.span.end].strip() == text[e.span.start:e.span.end] != "" for e in entities)
