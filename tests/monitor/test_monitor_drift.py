"""Drift statistics against hand-checked values, the reference profile, the drift report and concept-drift alerts."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from ainative.monitor import (CONFIDENCE_EDGES, DriftInputError, MonitorConfig, accuracy_alerts, bucket_counts, drift_report,
                              embedding_drift_auc, label_chi2, label_psi, low_confidence_share, psi, reference_profile)
from monitor_fixtures import INTENTS, START, synthetic_answers, synthetic_rows


def test_psi_of_identical_distributions_is_zero():
    assert psi([5, 10, 85], [5, 10, 85]) == 0.0
    assert psi([1, 2, 17], [10, 20, 170]) == 0.0  # proportions, not counts


def test_psi_known_small_example():
    # expected (0.5, 0.5), actual (0.25, 0.75): (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5) = 0.173287 + 0.101366
    assert psi([50, 50], [25, 75]) == pytest.approx(0.2746531, abs=1e-6)
    # three buckets, by hand: (0.2-0.3) ln(2/3) + (0.3-0.3) ln 1 + (0.5-0.4) ln(1.25) = 0.040547 + 0.022314
    assert psi([3, 3, 4], [2, 3, 5]) == pytest.approx(0.0628609, abs=1e-6)


def test_psi_floors_empty_buckets():
    # a reference bucket of 0 counts as 1e-4: (0.1 - 1e-4) ln(0.1 / 1e-4) + (0.9 - 1) ln(0.9) = 0.690085 + 0.010536
    assert psi([100, 0], [90, 10]) == pytest.approx((0.1 - 1e-4) * math.log(0.1 / 1e-4) + (0.9 - 1) * math.log(0.9), rel=1e-9)
    assert math.isfinite(psi([1, 0, 0], [0, 0, 1]))


@pytest.mark.parametrize("expected, actual", [([1, 2], [1, 2, 3]), ([0, 0], [1, 1]), ([1, 1], [0, 0]), ([], []), ([1, -1], [1, 1])])
def test_psi_refuses_what_it_cannot_compare(expected, actual):
    with pytest.raises(DriftInputError):
        psi(expected, actual)


def test_bucket_counts_edges():
    assert bucket_counts([0.0, 0.0999, 0.1, 0.95, 0.99, 1.0, 1.5, -1], CONFIDENCE_EDGES) == [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3]


def test_label_psi_and_chi2_on_disjoint_labels():
    reference, window = {"a": 50, "b": 50}, {"b": 50, "c": 50}
    assert label_psi(reference, window) == pytest.approx(psi([50, 50, 0], [0, 50, 50]))
    result = label_chi2(reference, window)
    expected = chi2_contingency(np.array([[50, 50, 0], [0, 50, 50]]))
    assert result["statistic"] == pytest.approx(expected.statistic) and result["dof"] == 2 and result["p_value"] < 1e-10
    assert label_chi2({"a": 10}, {"a": 30}) == {"statistic": 0.0, "p_value": 1.0, "dof": 0}  # one label: nothing to test


def test_low_confidence_share():
    assert low_confidence_share([0.1, 0.5, 0.49, 0.99], 0.5) == 0.5 and low_confidence_share([], 0.5) == 0.0


def test_embedding_auc_alike_and_shifted():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (400, 16))
    assert embedding_drift_auc(reference, rng.normal(0, 1, (400, 16))) == pytest.approx(0.5, abs=0.08)
    assert embedding_drift_auc(reference, rng.normal(0.5, 1, (400, 16))) > 0.9
    with pytest.raises(DriftInputError):
        embedding_drift_auc(reference, rng.normal(0, 1, (5, 16)))  # too few for 5 folds
    with pytest.raises(DriftInputError):
        embedding_drift_auc(reference, rng.normal(0, 1, (400, 8)))


def test_reference_profile_is_json_and_counts_everything():
    probabilities, lengths = synthetic_answers(300, seed=0)
    vectors = np.random.default_rng(1).normal(0, 1, (300, 8))
    profile = reference_profile(INTENTS, probabilities, lengths, vectors, sample_size=100, embedding_sample=50)
    assert json.loads(json.dumps(profile)) == profile
    assert sum(profile["label_counts"].values()) == sum(profile["confidence_counts"]) == sum(profile["length_counts"]) == 300
    assert set(profile["label_counts"]) == set(INTENTS) and len(profile["confidence_sample"]) == 100
    assert len(profile["embeddings"]["sample"]) == 50 and profile["embeddings"]["dim"] == 8
    with pytest.raises(DriftInputError):
        reference_profile(INTENTS[:5], probabilities, lengths)
    with pytest.raises(DriftInputError):
        reference_profile(INTENTS, probabilities, lengths[:10])


@pytest.fixture(scope="module")
def reference():
    probabilities, lengths = synthetic_answers(1000, seed=1)
    return reference_profile(INTENTS, probabilities, lengths, embeddings=np.random.default_rng(5).normal(0, 1, (1000, 16)))


def test_in_distribution_traffic_raises_nothing(reference):
    rows = synthetic_rows(*synthetic_answers(2000, seed=2))
    report = drift_report(reference, rows, MonitorConfig(), embeddings=np.random.default_rng(6).normal(0, 1, (500, 16)))
    assert report["status"] == "ok" and report["alerts"] == [] and report["warnings"] == []
    assert report["scores"]["label_psi"]["value"] < 0.1 and report["scores"]["embedding_auc"]["value"] < 0.6
    assert report["window"] == {"requests": 2000, "from": START, "to": START + 1999, "versions": {"v0001": 2000}}
    json.dumps(report)


def test_shifted_traffic_alerts(reference):
    rows = synthetic_rows(*synthetic_answers(2000, seed=3, shifted=True))
    report = drift_report(reference, rows, MonitorConfig(), embeddings=np.random.default_rng(6).normal(0.5, 1, (500, 16)))
    alerting = {name for name, score in report["scores"].items() if score["status"] == "alert"}
    assert {"label_psi", "confidence_psi", "low_confidence_share", "confidence_ks", "length_ks", "embedding_auc"} <= alerting
    assert report["status"] == "alert" and any(a.startswith("label_psi") for a in report["alerts"])
    assert report["scores"]["label_chi2"]["status"] == "warn"


def test_thresholds_come_from_the_config(reference):
    rows = synthetic_rows(*synthetic_answers(2000, seed=2))
    value = drift_report(reference, rows)["scores"]["label_psi"]["value"]
    strict = drift_report(reference, rows, MonitorConfig(psi_warn=value / 2, psi_alert=value * 0.9))
    assert strict["scores"]["label_psi"]["status"] == "alert" and strict["scores"]["label_psi"]["alert"] == pytest.approx(value * 0.9)


def test_small_window_is_skipped_not_alerted(reference):
    report = drift_report(reference, synthetic_rows(*synthetic_answers(50, seed=3, shifted=True)), MonitorConfig(min_requests=100))
    assert report["status"] == "skipped" and report["alerts"] == []
    assert all(score["status"] == "skipped" for score in report["scores"].values())
    assert drift_report(reference, [], MonitorConfig())["window"]["requests"] == 0


def test_embeddings_without_reference_embeddings_are_skipped():
    probabilities, lengths = synthetic_answers(500, seed=1)
    bare = reference_profile(INTENTS, probabilities, lengths)
    report = drift_report(bare, synthetic_rows(*synthetic_answers(200, seed=2)), MonitorConfig(), embeddings=np.zeros((200, 4)))
    assert report["scores"]["embedding_auc"]["status"] == "skipped" and "no embeddings" in report["scores"]["embedding_auc"]["reason"]


def test_a_malformed_profile_is_named():
    with pytest.raises(DriftInputError) as caught:
        drift_report({"labels": []}, [])
    assert "label_counts" in caught.value.what


def test_accuracy_alerts_week_over_week():
    weeks = [{"group": "W1", "answers": 100, "accuracy": 0.92}, {"group": "W2", "answers": 100, "accuracy": 0.90},
             {"group": "W3", "answers": 100, "accuracy": 0.85}, {"group": "W4", "answers": 3, "accuracy": 0.0},
             {"group": "W5", "answers": 100, "accuracy": 0.86}]
    alerts = accuracy_alerts(weeks, drop=0.05, min_answers=20)
    assert len(alerts) == 1 and "W2" in alerts[0] and "W3" in alerts[0]  # exactly 5 points; W4 too small to count
    assert accuracy_alerts(weeks, drop=0.06, min_answers=20) == []
    assert len(accuracy_alerts(weeks, drop=0.05, min_answers=1)) == 2  # W3 -> W4 counts when small periods do


def test_too_few_window_embeddings_skip_only_that_score(reference):
    rows = synthetic_rows(*synthetic_answers(300, seed=3, shifted=True))
    report = drift_report(reference, rows, MonitorConfig(), embeddings=np.zeros((4, 16)))
    assert report["scores"]["embedding_auc"]["status"] == "skipped" and "too few" in report["scores"]["embedding_auc"]["reason"]
    assert report["status"] == "alert"  # the other scores were still judged
