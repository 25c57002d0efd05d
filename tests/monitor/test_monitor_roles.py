"""Champion and challenger in one request log: the role column (and a log from before it), shadow answers kept out of
what reads the log as traffic, and the comparison of the two versions: agreement, feedback accuracy and its tests."""
from __future__ import annotations

import sqlite3

import pytest

from ainative.core import ConfigError
from ainative.monitor import MonitorConfig, RequestStore, compare_models, monitor_report, request_row
from monitor_fixtures import START, answer

OLD_SCHEMA = """CREATE TABLE requests (id INTEGER PRIMARY KEY, request_id VARCHAR(200) NOT NULL, position INTEGER NOT NULL,
    at FLOAT NOT NULL, model_version VARCHAR(64), label VARCHAR(256), confidence FLOAT, top_k TEXT, latency_s FLOAT,
    text_length INTEGER, text TEXT, text_hash VARCHAR(64), truncated BOOLEAN NOT NULL, unknown_rate FLOAT, embedding BLOB)"""
OLD_FEEDBACK = """CREATE TABLE feedback (id INTEGER PRIMARY KEY, request_id VARCHAR(200), position INTEGER, label VARCHAR(256) NOT NULL,
    at FLOAT NOT NULL, source VARCHAR(64), text TEXT, text_hash VARCHAR(64))"""
LABELS = ["intent_00", "intent_01"]


def shadowed(store: RequestStore, n: int, champion_right: int, challenger_right: int, at: float = START) -> None:
    """`n` texts answered by v0001 and shadowed by v0002, all corrected to intent_01: the champion answers the first
    `champion_right` right, the challenger the first `challenger_right`."""
    rows = []
    for i in range(n):
        rows.append(request_row(f"q{i}", 0, answer("intent_01" if i < champion_right else "intent_00", 0.8, "v0001"), f"t{i}", 0.01, at=at + i))
        rows.append(request_row(f"q{i}", 0, answer("intent_01" if i < challenger_right else "intent_00", 0.9, "v0002"), f"t{i}", 0.03,
                                at=at + i + 0.5, role="shadow"))
    store.write_requests(rows)
    store.add_feedback([{"request_id": f"q{i}", "label": "intent_01"} for i in range(n)], LABELS, at=at + n)


def test_a_log_from_before_roles_gains_the_column_keeps_its_rows_and_counts_them_as_the_champions(tmp_path):
    path = tmp_path / "monitor.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(OLD_SCHEMA)
        connection.execute(OLD_FEEDBACK)
        connection.execute("INSERT INTO requests (request_id, position, at, model_version, label, confidence, latency_s, truncated) "
                           "VALUES ('old', 0, 1.0, 'v0001', 'intent_00', 0.9, 0.01, 0)")
    store = RequestStore(f"sqlite:///{path}")
    try:
        assert store.added_columns == ["role", "abstained"]
        assert [row["role"] for row in store.recent()] == [None]  # an answer from before roles: the champion's
        stored = store.add_feedback([{"request_id": "old", "label": "intent_01"}], LABELS, at=2.0)
        assert stored[0]["predicted"] == "intent_00" and not stored[0]["correct"]
        store.write_requests([request_row("old", 0, answer("intent_01", 0.9, "v0002"), "x", 0.02, at=1.5, role="shadow")])
        assert [(row["request_id"], row["role"]) for row in store.recent()] == [("old", None)]  # the shadow is not traffic
        assert store.feedback_accuracy("version") == [{"group": "v0001", "answers": 1, "correct": 0, "first_at": 1.0, "last_at": 1.0,
                                                        "accuracy": 0.0}]
        comparison = compare_models(store.comparison_rows(MonitorConfig()), config=MonitorConfig(min_feedback=1))
        assert (comparison["champion"]["version"], comparison["challenger"]["version"]) == ("v0001", "v0002")
        assert comparison["agreement"] == {"pairs": 1, "agree": 0, "rate": 0.0}
        assert (comparison["champion"]["accuracy"], comparison["challenger"]["accuracy"]) == (0.0, 1.0)
    finally:
        store.close()
    assert RequestStore(f"sqlite:///{path}").added_columns == []


def test_an_unknown_role_is_refused(store):
    with pytest.raises(ConfigError, match="role='canary'"):
        request_row("r", 0, answer(), "x", 0.01, role="canary")


def test_shadow_answers_stay_out_of_the_window_and_what_feedback_corrects(store):
    shadowed(store, 30, champion_right=10, challenger_right=30)
    config = MonitorConfig(window_requests=40)
    assert len(store.window(config)) == 30 and {row["role"] for row in store.window(config)} == {"champion"}
    assert len(store.window(config, shadow=True)) == 40  # the last 40 rows, shadows included
    assert [(g["group"], g["answers"], g["correct"]) for g in store.feedback_accuracy("version")] == [("v0001", 30, 10)]
    again = store.add_feedback([{"request_id": "q0", "label": "intent_01"}], LABELS, at=START + 100)
    assert again[0]["predicted"] == "intent_01"  # the champion's answer, though the shadow's row is the later one


def test_a_significant_difference_on_enough_feedback(store):
    shadowed(store, 30, champion_right=15, challenger_right=27)
    comparison = compare_models(store.comparison_rows(MonitorConfig()))
    assert comparison["status"] == "compared"
    assert (comparison["champion"]["accuracy"], comparison["challenger"]["accuracy"]) == (0.5, 0.9)
    assert comparison["agreement"] == {"pairs": 30, "agree": 18, "rate": 0.6}
    assert comparison["champion"]["mean_confidence"] == pytest.approx(0.8) and comparison["challenger"]["latency"]["p95_ms"] == pytest.approx(30.0)
    test = comparison["accuracy_test"]
    from scipy.stats import chi2_contingency
    expected = chi2_contingency([[15, 15], [27, 3]], correction=False).pvalue
    assert test["status"] == "tested" and test["p_value"] == pytest.approx(expected) and test["p_value"] < 0.01
    assert test["significant"] and test["better"] == "challenger" and test["difference"] == pytest.approx(0.4)
    assert comparison["paired_test"]["only_challenger_right"] == 12 and comparison["paired_test"]["only_champion_right"] == 0


def test_too_few_feedback_rows_are_said_not_tested(store):
    shadowed(store, 8, champion_right=0, challenger_right=8)
    test = compare_models(store.comparison_rows(MonitorConfig()))["accuracy_test"]
    assert test["status"] == "too_few" and test["p_value"] is None and test["significant"] is None
    assert "needs 20 answers with feedback per version; has 8 (champion) and 8 (challenger)" == test["reason"]


def test_equal_accuracy_is_no_difference(store):
    shadowed(store, 25, champion_right=25, challenger_right=25)
    test = compare_models(store.comparison_rows(MonitorConfig()))["accuracy_test"]
    assert test["p_value"] == 1.0 and not test["significant"] and test["better"] is None


def test_nothing_to_compare_without_a_challenger_or_after_promotion(store):
    store.write_requests([request_row(f"r{i}", 0, answer(version="v0001"), "x", 0.01, at=START + i) for i in range(3)])
    skipped = compare_models(store.comparison_rows(MonitorConfig()))
    assert skipped["status"] == "skipped" and skipped["reason"] == "no challenger answers in the window"
    same = compare_models(store.comparison_rows(MonitorConfig()), "v0001", "v0001")  # the challenger alias names the champion
    assert same["status"] == "skipped"


def test_split_answers_are_compared_by_version(store):
    rows = [request_row(f"a{i}", 0, answer("intent_01" if i % 2 else "intent_00", 0.7, "v0001"), "x", 0.01, at=START + i) for i in range(20)]
    rows += [request_row(f"b{i}", 0, answer("intent_01", 0.95, "v0002"), "x", 0.01, at=START + 20 + i, role="challenger") for i in range(20)]
    store.write_requests(rows)
    store.add_feedback([{"request_id": f"{side}{i}", "label": "intent_01"} for side in "ab" for i in range(20)], LABELS, at=START + 50)
    comparison = compare_models(store.comparison_rows(MonitorConfig()))
    assert comparison["challenger"]["by_role"] == {"challenger": 20} and comparison["agreement"]["pairs"] == 0
    assert (comparison["champion"]["accuracy"], comparison["challenger"]["accuracy"]) == (0.5, 1.0)
    assert comparison["accuracy_test"]["better"] == "challenger" and comparison["paired_test"] is None
    assert {g["group"] for g in store.feedback_accuracy("version")} == {"v0001", "v0002"}  # split answers are traffic


def test_the_monitoring_report_carries_the_comparison(store, tmp_path):
    shadowed(store, 20, champion_right=5, challenger_right=20)
    from ainative.monitor import reference_profile
    import numpy as np
    reference = reference_profile(LABELS, np.tile([[0.2, 0.8]], (50, 1)), np.full(50, 20))
    report = monitor_report(store, reference, MonitorConfig(min_requests=1), tmp_path / "reports", now=START + 100)
    assert report["comparison"]["agreement"]["rate"] == 0.25 and report["comparison"]["accuracy_test"]["better"] == "challenger"


def test_an_abstention_is_logged_with_the_models_best_guess(tmp_path):
    store = RequestStore(f"sqlite:///{tmp_path / 'log.sqlite'}")
    try:
        declined = {"intent": None, "abstained": True, "confidence": 0.31, "model_version": "v0001",
                    "top_k": [{"intent": "intent_01", "confidence": 0.31}, {"intent": "intent_00", "confidence": 0.2}]}
        store.write_requests([request_row("q-out", 0, declined, "book me a flight", 0.01, at=START),
                              request_row("q-in", 0, answer("intent_00", 0.9, "v0001"), "t", 0.01, at=START + 1)])
        rows = {row["request_id"]: row for row in store.recent()}
        assert (rows["q-out"]["label"], bool(rows["q-out"]["abstained"])) == ("intent_01", True)  # drift sees the model's guess
        assert (rows["q-in"]["label"], bool(rows["q-in"]["abstained"])) == ("intent_00", False)
    finally:
        store.close()
