"""Embedding drift and the unknown-token rate from the request log: stored compactly, read back, judged against the
reference the optimisation stage measured; an older log gains the columns; a missing part is reported, not faked."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from ainative.monitor import (MonitorConfig, RequestStore, drift_report, load_reference, reference_profile, request_row,
                              window_embeddings)
from monitor_fixtures import INTENTS, START, answer, synthetic_answers, synthetic_rows

OLD_SCHEMA = """CREATE TABLE requests (id INTEGER PRIMARY KEY, request_id VARCHAR(200) NOT NULL, position INTEGER NOT NULL,
    at FLOAT NOT NULL, model_version VARCHAR(64), label VARCHAR(256), confidence FLOAT, top_k TEXT, latency_s FLOAT,
    text_length INTEGER, text TEXT, text_hash VARCHAR(64), truncated BOOLEAN NOT NULL)"""


def test_a_log_created_before_the_embedding_columns_gains_them_and_keeps_its_rows(tmp_path):
    path = tmp_path / "monitor.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(OLD_SCHEMA)
        connection.execute("INSERT INTO requests (request_id, position, at, label, confidence, truncated) VALUES ('old', 0, 1.0, 'a', 0.9, 0)")
    store = RequestStore(f"sqlite:///{path}")
    assert store.added_columns == ["role", "abstained", "unknown_rate", "embedding"]
    store.write_requests([request_row("new", 0, answer(), "where is my card?", 0.01, at=START, embedding=np.ones(4), unknown_rate=0.25)])
    rows = {row["request_id"]: row for row in store.recent()}
    assert rows["old"]["embedding"] is None and rows["new"]["unknown_rate"] == 0.25
    assert np.array_equal(window_embeddings(rows.values()), np.ones((1, 4)))
    store.close()
    assert RequestStore(f"sqlite:///{path}").added_columns == []  # the second opening finds them


def test_embeddings_are_half_precision_and_not_kept_without_texts():
    vector = np.random.default_rng(0).normal(size=384)
    kept = request_row("r", 0, answer(), "hi", 0.01, embedding=vector)
    assert len(kept["embedding"]) == 768 and np.allclose(np.frombuffer(kept["embedding"], np.float16), vector, atol=2e-3)
    assert request_row("r", 0, answer(), "hi", 0.01, "none", embedding=vector)["embedding"] is None
    assert window_embeddings([{"embedding": None}, {}]) is None


def _with_vectors(rows: list[dict], vectors: np.ndarray, rates: float | None = None) -> list[dict]:
    return [{**row, "embedding": vector.astype(np.float16).tobytes(), "unknown_rate": rates} for row, vector in zip(rows, vectors)]


@pytest.fixture
def reference():
    rng = np.random.default_rng(1)
    profile = reference_profile(INTENTS, *synthetic_answers(600, seed=1), embeddings=rng.normal(0, 1, (600, 16)),
                                unknown_rates=np.zeros(600))
    return profile


def test_logged_embeddings_drive_the_domain_classifier(reference):
    rng = np.random.default_rng(2)
    rows = synthetic_rows(*synthetic_answers(400, seed=2))
    calm = drift_report(reference, _with_vectors(rows, rng.normal(0, 1, (400, 16))))["scores"]["embedding_auc"]
    moved = drift_report(reference, _with_vectors(rows, rng.normal(0.6, 1, (400, 16))))["scores"]["embedding_auc"]
    assert calm["status"] == "ok" and moved["status"] == "alert" and moved["value"] > 0.9


def test_unknown_token_rate_is_graded_against_the_reference(reference):
    rows = synthetic_rows(*synthetic_answers(400, seed=2))
    vectors = np.zeros((400, 16))
    graded = {rate: drift_report(reference, _with_vectors(rows, vectors, rate))["scores"]["unknown_token_rate"]["status"]
              for rate in (0.0, 0.015, 0.05)}
    assert graded == {0.0: "ok", 0.015: "warn", 0.05: "alert"}
    assert drift_report(reference, rows)["scores"]["unknown_token_rate"]["status"] == "skipped"  # not logged: not judged
    older = {**reference, "unknown_token_rate": None}
    assert "no unknown-token rate" in drift_report(older, _with_vectors(rows, vectors, 0.5))["scores"]["unknown_token_rate"]["reason"]


def test_without_logged_embeddings_embedding_drift_is_skipped_with_a_reason(reference):
    score = drift_report(reference, synthetic_rows(*synthetic_answers(400, seed=2)))["scores"]["embedding_auc"]
    assert score["status"] == "skipped" and "no embeddings in the window" in score["reason"]


def test_load_reference_uses_the_served_variants_embeddings(tmp_path, reference):
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "reference.json").write_text(json.dumps(reference))
    (tmp_path / "onnx").mkdir()
    np.save(tmp_path / "onnx" / "reference_embeddings.model.int8.npy", np.full((30, 16), 0.5, np.float16))
    np.save(tmp_path / "onnx" / "reference_embeddings.model.npy", np.full((30, 16), -0.5, np.float16))
    measured = {"unknown_token_rate": {"mean": 0.002, "any": 0.01, "texts": 600},
                "embeddings": {"model.int8.onnx": "reference_embeddings.model.int8.npy", "model.onnx": "reference_embeddings.model.npy"}}
    (tmp_path / "onnx" / "report.json").write_text(json.dumps({"monitoring_reference": measured}))
    int8, fp32 = load_reference(tmp_path, "model.int8.onnx"), load_reference(tmp_path, "model.onnx")
    assert int8["embeddings"]["sample"].mean() == 0.5 and fp32["embeddings"]["sample"].mean() == -0.5
    assert int8["unknown_token_rate"]["mean"] == 0.002
    assert load_reference(tmp_path, "model.fp16.onnx")["embeddings"] == reference["embeddings"]  # no sample: the profile's own
    (tmp_path / "onnx" / "report.json").write_text(json.dumps({"files": {}}))  # optimised before these were measured
    assert load_reference(tmp_path, "model.int8.onnx")["unknown_token_rate"]["mean"] == 0.0  # the profile's own
