"The joint task's metrics: exact spans (seqeval, conlleval mode), sentence accuracy, the per-type table."
import numpy as np
import pytest

from ainative.tasks import INTENT, INTENT_SLOTS, JointLabels, slot_scores, task_named, task_of_data
from ainative.core import ConfigError

LABELS = ["book", "weather"]


def joint(intents, *tags):
    return JointLabels(np.array(intents), [list(t) for t in tags])


def test_boundary_error_costs_slot_f1_not_intent_accuracy():
    truth = joint([0, 1], ["B-city", "I-city", "O"], ["O", "B-day"])
    guess = joint([0, 1], ["B-city", "O", "O"], ["O", "B-day"])
    scores = INTENT_SLOTS.metrics(truth, guess, LABELS)
    assert scores["intent_accuracy"] == 1.0
    assert scores["slot_precision"] == scores["slot_recall"] == 0.5
    assert scores["sentence_accuracy"] == 0.5
    assert scores["slot_types"]["city"]["f1"] == 0.0 and scores["slot_types"]["day"]["support"] == 1


def test_wrong_type_with_right_boundaries_is_an_error():
    scores = INTENT_SLOTS.metrics(joint([0], ["B-city", "I-city"]), joint([0], ["B-day", "I-day"]), LABELS)
    assert scores["slot_f1"] == 0.0 and scores["sentence_accuracy"] == 0.0


def test_conlleval_reads_an_i_start_as_an_entity():
    # conlleval (and seqeval's default mode) treat I-x after O as the start of an x entity
    scores = INTENT_SLOTS.metrics(joint([0], ["B-city", "I-city"]), joint([0], ["I-city", "I-city"]), LABELS)
    assert scores["slot_f1"] == 1.0 and scores["sentence_accuracy"] == 1.0


def test_texts_without_entities_count_for_sentence_accuracy():
    scores = INTENT_SLOTS.metrics(joint([0, 1], ["O"], ["O"]), joint([0, 0], ["O"], ["B-city"]), LABELS)
    assert scores["sentence_accuracy"] == 0.5 and scores["slot_precision"] == 0.0


def test_entities_only_data_scores_slots_alone():
    scores = INTENT_SLOTS.metrics(joint([-1, -1], ["B-city"], ["O"]), joint([-1, -1], ["B-city"], ["O"]), [])
    assert scores["intent_accuracy"] is None and scores["slot_f1"] == 1.0 and scores["sentence_accuracy"] == 1.0


def test_lengths_must_match():
    with pytest.raises(ConfigError, match="differ in number or length"):
        slot_scores([["O", "B-city"]], [["O"]])


def test_task_from_data_and_registry():
    assert task_of_data({"entities": {"slot_labels": ["city"]}}) is INTENT_SLOTS
    assert task_of_data({"label2id": {"a": 0}}) is INTENT and task_named("intent_slots") is INTENT_SLOTS
    assert "entities" in INTENT_SLOTS.answer_fields and INTENT_SLOTS.entities and not INTENT.entities
