"""monitor_report: retention, drift and weekly feedback accuracy into reports/monitor.json, with titled figures."""
from __future__ import annotations

import json

import matplotlib
import pytest

from ainative.monitor import MonitorConfig, monitor_report, plot_feedback_accuracy, plot_histograms, plot_label_shift, reference_profile
from monitor_fixtures import INTENTS, START, synthetic_answers, synthetic_rows

matplotlib.use("Agg")
DAY = 86400


@pytest.fixture
def reference():
    return reference_profile(INTENTS, *synthetic_answers(1000, seed=1))


def test_report_files_and_accuracy_alert(store, reference, tmp_path):
    week_one = synthetic_rows(*synthetic_answers(300, seed=2), at=START, tag="w1")
    week_two = synthetic_rows(*synthetic_answers(300, seed=3), at=START + 7 * DAY, tag="w2")
    old = synthetic_rows(*synthetic_answers(10, seed=4), at=START - 60 * DAY, tag="old")
    store.write_requests(old + week_one + week_two)
    # feedback: week one 30 of 30 answers confirmed, week two 24 of 30 (accuracy 100% -> 80%)
    items = [{"request_id": r["request_id"], "label": r["label"]} for r in week_one[:30] + week_two[:24]]
    items += [{"request_id": r["request_id"], "label": next(i for i in INTENTS if i != r["label"])} for r in week_two[24:30]]
    store.add_feedback(items, set(INTENTS))
    report = monitor_report(store, reference, MonitorConfig(), tmp_path / "reports", now=START + 8 * DAY)
    on_disk = json.loads((tmp_path / "reports" / "monitor.json").read_text())
    assert on_disk["retention_deleted"] == 10 and on_disk["window"]["requests"] == 600
    assert [(w["answers"], w["accuracy"]) for w in on_disk["feedback_accuracy"]["weekly"]] == [(30, 1.0), (30, 0.8)]
    assert on_disk["status"] == "alert" and any("feedback accuracy fell" in a for a in on_disk["alerts"])
    assert on_disk["scores"]["label_psi"]["status"] == "ok"  # the traffic itself did not move: only accuracy did
    assert set(report["figures"]) == {"label_shift", "histograms", "feedback_accuracy"}
    for path in report["figures"].values():
        with open(path, "rb") as image: assert image.read(8) == b"\x89PNG\r\n\x1a\n"


def test_empty_log_reports_skipped(store, reference, tmp_path):
    report = monitor_report(store, reference, MonitorConfig(), tmp_path, now=START)
    assert report["status"] == "skipped" and report["figures"] == {} and (tmp_path / "monitor.json").is_file()


def test_figures_are_titled_and_labelled(reference):
    rows = synthetic_rows(*synthetic_answers(200, seed=3, shifted=True))
    weeks = [{"group": "2026-W01", "answers": 40, "accuracy": 0.9}, {"group": "2026-W02", "answers": 5, "accuracy": 0.6}]
    for figure in (plot_label_shift(reference, rows), plot_histograms(reference, rows), plot_feedback_accuracy(weeks)):
        for ax in figure.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    shift = plot_label_shift(reference, rows, top=5)
    names = [t.get_text() for t in shift.axes[0].get_yticklabels()]
    assert len(names) == 5 and set(names[-3:]) == {"intent_00", "intent_01", "intent_02"}  # the three that took over, on top
