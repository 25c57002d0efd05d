"""The page's traffic series counts what clients received: a challenger's shadow answers stay out of it."""
from __future__ import annotations

from ainative.monitor import RequestStore, request_row
import ainative.ui  # noqa: F401  (adds RequestStore.answer_times)


def test_shadow_answers_are_not_traffic(tmp_path):
    store = RequestStore(f"sqlite:///{tmp_path / 'log.sqlite'}")
    try:
        answer = {"intent": "refund", "confidence": 0.9, "top_k": []}
        store.write_requests([
            request_row("r1", 0, {**answer, "model_version": "v0001"}, "money back", 0.010, at=100.0),
            request_row("r1", 0, {**answer, "model_version": "v0002"}, "money back", 0.020, at=100.5, role="shadow"),
            request_row("r2", 0, {**answer, "model_version": "v0002"}, "refund me", 0.030, at=101.0, role="challenger")])
        assert store.answer_times(since=0) == [(100.0, 0.010), (101.0, 0.030)]
    finally:
        store.close()
