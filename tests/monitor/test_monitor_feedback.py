"""Feedback: validated against labels and the log, all or nothing, the latest correction wins; feedback accuracy."""
from __future__ import annotations

import pytest

from ainative.monitor import FeedbackError, RequestStore, request_row
from monitor_fixtures import START, answer, rows_for

LABELS = {"intent_00", "intent_01", "intent_02"}


@pytest.fixture
def logged(store):
    "A log with single-text requests r0..r4 (answered intent_00) and a two-text batch b (intent_00, intent_02)."
    store.write_requests(rows_for([f"r{i}" for i in range(5)]))
    store.write_requests([request_row("b", 0, answer("intent_00"), "one", 0.01, at=START + 10),
                          request_row("b", 1, answer("intent_02", 0.4), "two", 0.01, at=START + 10)])
    return store


def test_feedback_on_a_logged_answer(logged):
    stored = logged.add_feedback([{"request_id": "b", "position": 1, "label": "intent_01"}], LABELS, source="agent", at=START + 60)
    assert stored == [{"request_id": "b", "position": 1, "label": "intent_01", "predicted": "intent_02", "correct": False,
                       "replaced": False, "at": START + 60, "source": "agent"}]
    assert logged.counts()["feedback"] == 1


def test_unknown_label_is_named(logged):
    with pytest.raises(FeedbackError) as caught:
        logged.add_feedback([{"request_id": "r0", "label": "intent_00"}, {"request_id": "r1", "label": "refund_please"}], LABELS)
    error = caught.value
    assert (error.item, error.field, error.where) == (1, "label", "items[1].label") and "'refund_please'" in error.what
    assert "intent_00" in error.fix and isinstance(error, ValueError)


def test_unknown_request_id_is_named(logged):
    with pytest.raises(FeedbackError) as caught:
        logged.add_feedback([{"request_id": "r0", "label": "intent_00"}, {"request_id": "no-such-request", "label": "intent_01"}], LABELS)
    assert (caught.value.item, caught.value.field) == (1, "request_id") and "'no-such-request'" in caught.value.what


def test_unknown_position_of_a_known_request(logged):
    with pytest.raises(FeedbackError) as caught:
        logged.add_feedback([{"request_id": "b", "position": 2, "label": "intent_01"}], LABELS)
    assert caught.value.field == "request_id" and "position 2" in caught.value.what


@pytest.mark.parametrize("item, field", [({"label": "intent_00"}, None), ({"request_id": "r0", "text": "hi", "label": "intent_00"}, None),
                                         ("not an object", None), ({"request_id": 7, "label": "intent_00"}, "request_id"),
                                         ({"request_id": "r0", "position": -1, "label": "intent_00"}, "position"),
                                         ({"request_id": "r0", "position": True, "label": "intent_00"}, "position"),
                                         ({"text": "   ", "label": "intent_00"}, "text"), ({"request_id": "r0", "label": None}, "label")])
def test_malformed_items(logged, item, field):
    with pytest.raises(FeedbackError) as caught:
        logged.add_feedback([item], LABELS)
    assert (caught.value.item, caught.value.field) == (0, field)


@pytest.mark.parametrize("items", [[], "r0", None])
def test_not_a_list(logged, items):
    with pytest.raises(FeedbackError):
        logged.add_feedback(items, LABELS)


def test_all_or_nothing(logged):
    logged.add_feedback([{"request_id": "r0", "label": "intent_01"}], LABELS)
    with pytest.raises(FeedbackError):
        logged.add_feedback([{"request_id": "r0", "label": "intent_02"}, {"request_id": "r1", "label": "intent_01"},
                             {"text": "new question", "label": "intent_01"}, {"request_id": "gone", "label": "intent_01"}], LABELS)
    assert logged.counts()["feedback"] == 1
    assert logged.feedback_accuracy()[0]["correct"] == 0  # r0's correction is still the first one (intent_01, wrong)


def test_latest_correction_wins(logged):
    logged.add_feedback([{"request_id": "r0", "label": "intent_01"}], LABELS, at=START + 100)
    second = logged.add_feedback([{"request_id": "r0", "label": "intent_00"}], LABELS, at=START + 200)
    assert second[0]["replaced"] and second[0]["correct"]
    assert logged.counts()["feedback"] == 1
    assert logged.feedback_accuracy() == [{"group": "v0001", "answers": 1, "correct": 1, "first_at": START, "last_at": START, "accuracy": 1.0}]


def test_latest_within_one_list_wins(logged):
    stored = logged.add_feedback([{"request_id": "r0", "label": "intent_01"}, {"request_id": "r0", "label": "intent_00"}], LABELS)
    assert [s["label"] for s in stored] == ["intent_00"] and logged.counts()["feedback"] == 1


def test_free_text_feedback_follows_privacy(tmp_path):
    salt = "0123456789abcdef-salt"
    for privacy in ("text", "hash"):
        store = RequestStore(f"sqlite:///{tmp_path / privacy}.sqlite", text_privacy=privacy, hash_salt=salt)
        store.add_feedback([{"text": "my card never came", "label": "intent_01"}], LABELS)
        with store.engine.connect() as connection:
            text, hashed = connection.exec_driver_sql("SELECT text, text_hash FROM feedback").one()
        assert (text is not None, hashed is not None) == (privacy == "text", privacy == "hash")
        store.close()
    silent = RequestStore(f"sqlite:///{tmp_path / 'none'}.sqlite", text_privacy="none")
    with pytest.raises(FeedbackError) as caught:
        silent.add_feedback([{"text": "my card never came", "label": "intent_01"}], LABELS)
    assert caught.value.field == "text" and "text_privacy" in caught.value.what


def test_feedback_accuracy_per_version_day_and_week(store):
    day = 86400
    store.write_requests(rows_for(["a1", "a2", "a3", "a4"], at=START, version="v0001")  # Thursday, week 41
                         + rows_for(["b1", "b2"], at=START + 7 * day, version="v0002"))   # a week later, week 42
    store.add_feedback([{"request_id": "a1", "label": "intent_00"}, {"request_id": "a2", "label": "intent_00"},
                        {"request_id": "a3", "label": "intent_00"}, {"request_id": "a4", "label": "intent_01"},
                        {"request_id": "b1", "label": "intent_00"}, {"request_id": "b2", "label": "intent_01"}], LABELS)
    by_version = store.feedback_accuracy("version")
    assert [(g["group"], g["answers"], g["correct"], g["accuracy"]) for g in by_version] == [("v0001", 4, 3, 0.75), ("v0002", 2, 1, 0.5)]
    assert [g["group"] for g in store.feedback_accuracy("day")] == ["2025-10-09", "2025-10-16"]
    assert [(g["group"], g["accuracy"]) for g in store.feedback_accuracy("week")] == [("2025-W41", 0.75), ("2025-W42", 0.5)]
    assert [g["group"] for g in store.feedback_accuracy("week", since=START + day)] == ["2025-W42"]
    with pytest.raises(Exception) as caught:
        store.feedback_accuracy("month")
    assert "group_by" in str(caught.value)


def test_a_reused_request_id_counts_once(store):
    store.write_requests(rows_for(["same"], at=START, intent="intent_00") + rows_for(["same"], at=START + 5, intent="intent_02"))
    stored = store.add_feedback([{"request_id": "same", "label": "intent_02"}], LABELS)
    assert stored[0]["predicted"] == "intent_02"  # the latest answer under that id
    assert [(g["answers"], g["correct"]) for g in store.feedback_accuracy()] == [(1, 1)]


def test_many_ids_in_one_bulk(store):
    ids = [f"r{i}" for i in range(1200)]  # more than one chunk of the IN (...) lists
    store.write_requests(rows_for(ids))
    stored = store.add_feedback([{"request_id": i, "label": "intent_00"} for i in ids], LABELS)
    assert len(stored) == 1200 and store.counts()["feedback"] == 1200
    again = store.add_feedback([{"request_id": i, "label": "intent_01"} for i in ids], LABELS)
    assert all(s["replaced"] for s in again) and store.counts()["feedback"] == 1200


def test_the_flywheels_dataset_reads_what_every_replica_logged_and_was_told(store_url):
    """Two replicas on one log: answers on A, corrections on B (the later one of an answer wins) and a free text on A;
    the flywheel's `read_feedback` (what `ainative flywheel` builds its dataset from) sees all of it, with the texts."""
    from ainative.flywheel import read_feedback
    replica_a, replica_b = RequestStore(store_url), RequestStore(store_url)
    try:
        replica_a.write_requests([request_row(f"r{i}", 0, answer("intent_00"), f"text {i}", 0.01, at=START + i) for i in range(3)])
        replica_b.add_feedback([{"request_id": "r0", "label": "intent_01"}, {"request_id": "r2", "label": "intent_00"}], LABELS, at=START + 10)
        replica_b.add_feedback([{"request_id": "r0", "label": "intent_02"}], LABELS, source="agent", at=START + 20)
        replica_a.add_feedback([{"text": "a free text", "label": "intent_01"}], LABELS, at=START + 30)
        feedback = read_feedback(replica_a)
    finally:
        replica_a.close()
        replica_b.close()
    columns = feedback[["request_id", "text", "label", "predicted", "source"]].astype(object)
    assert columns.where(columns.notna(), None).values.tolist() == [
        ["r2", "text 2", "intent_00", "intent_00", "api"], ["r0", "text 0", "intent_02", "intent_00", "agent"],
        [None, "a free text", "intent_01", None, "api"]]
    assert feedback["at"].tolist() == [START + 10, START + 20, START + 30]
