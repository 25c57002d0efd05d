"""The decision: the paired test, the rules, and `promote_if_better` against a real registry of demo versions (tiny
random models: the gate, not their answers, decides here), with its evidence recorded and nothing moved on a refusal."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ainative import flywheel
from ainative.core import ConfigError
from ainative.demo import DEMO_LABELS, make_demo_run
from ainative.flywheel import (DECISION_FILE, decide, feedback_mark, merge_feedback, paired_test, promote_if_better,
                               write_feedback_dataset)
from ainative.registry import Registry

NAME = "intent-classifier"


def test_paired_test_counts_only_the_disagreements():
    result = paired_test([True, True, False, False, True], [True, False, True, True, True])
    assert (result["only_champion"], result["only_challenger"]) == (1, 2)
    assert result["p_better"] == pytest.approx(0.5)       # P(X >= 2 | n = 3, 1/2)
    assert result["p_worse"] == pytest.approx(0.875)      # P(X >= 1 | n = 3, 1/2)
    assert (result["champion_correct"], result["challenger_correct"]) == ("11001", "10111")
    with pytest.raises(ConfigError, match="one outcome per text"):
        paired_test([True, False], [True])


LARGE_TEST = ([True] * 2000, [True] * 2000)  # a test set large enough to decide "not worse" on its own


@pytest.mark.parametrize("rule, feedback, promote", [
    ("significant", ([False] * 8, [True] * 8), True),    # p = 1/256
    ("significant", ([False] * 3, [True] * 3), False),   # better, p = 1/8: not significant
    ("better", ([False] * 3, [True] * 3), True),
    ("better", ([True] * 3, [True] * 3), False),         # equal is not better
    ("never", ([False] * 8, [True] * 8), False),
])
def test_the_rules(rule, feedback, promote):
    evidence = {"test": paired_test(*LARGE_TEST), "feedback": paired_test(*feedback)}
    decision = decide(evidence, rule)
    assert decision["promote"] is promote and decision["gate"]["decided_on"] == "test" and decision["gate"]["passed"]


def test_a_decided_loss_on_the_test_set_is_refused_however_much_better_on_feedback():
    evidence = {"test": paired_test([True] * 40, [True] * 33 + [False] * 7),
                "feedback": paired_test([False] * 8, [True] * 8)}
    decision = decide(evidence)
    assert not decision["promote"] and decision["gate"]["test"]["verdict"] == "worse" and decision["gate"]["pooled"] is None
    assert decision["reasons"][0].startswith("test set: worse by more than the margin")


@pytest.fixture
def two_versions(tmp_path):
    "Production v0001 (test accuracy 0.9) and a challenger v0002 that reports 0.5 on the same test set, with a dataset."
    registry = Registry(tmp_path / "registry")
    champion = registry.register(make_demo_run(tmp_path / "a", accuracy=0.9, macro_f1=0.9).path)
    registry.promote(NAME, champion, "production")
    challenger = registry.register(make_demo_run(tmp_path / "b", accuracy=0.5, macro_f1=0.5, seed=1).path)
    splits = {"train": pd.DataFrame({"text": ["where is my kettle"], "label": ["delivery_status"]}),
              "validation": pd.DataFrame({"text": ["refund the lamp"], "label": ["refund"]}),
              "test": pd.DataFrame({"text": ["cancel the chair", "where is my phone", "refund the book"],
                                    "label": ["cancel_order", "delivery_status", "refund"]})}
    feedback = pd.DataFrame({"feedback_id": range(1, 13), "at": [float(i) for i in range(1, 13)],
                             "text": [f"voucher {i} refused" for i in range(12)], "label": ["refund"] * 12})
    merge = merge_feedback(splits, pd.DataFrame(columns=["feedback_id", "text", "label"]), feedback, 0.5)
    parent = {"version": "data-demo0000", "label2id": {label: i for i, label in enumerate(DEMO_LABELS)}}
    write_feedback_dataset(tmp_path / "data", merge, parent, {}, feedback_mark(feedback))
    return registry, champion, challenger, tmp_path / "data"


def test_the_versions_answer_the_test_split_and_the_holdout_and_the_decision_is_recorded(two_versions):
    "The real comparison of two tiny models: 3 test texts and the held-out feedback, decided and recorded with every number."
    registry, champion, challenger, data = two_versions
    decision = promote_if_better(registry, NAME, challenger, "production", rule="better", data_dir=data)
    recorded = json.loads((registry.resolve(NAME, challenger) / f"decision-{champion}" / DECISION_FILE).read_text())
    assert recorded["evidence"]["test"]["examples"] == 3 and recorded["evidence"]["feedback"]["examples"] >= 1
    assert len(recorded["evidence"]["test"]["champion_correct"]) == 3 and recorded["gate"]["test"]["n"] == 3
    assert recorded["promote"] == decision["promote"] and recorded["reasons"][0].startswith("test set: ")
    assert registry.verify(NAME) == []


def test_a_challenger_worse_on_the_test_set_is_kept_out_and_the_decision_is_recorded(two_versions, monkeypatch):
    registry, champion, challenger, data = two_versions
    monkeypatch.setattr(flywheel, "compare_versions", lambda *args: {
        "test": paired_test([True] * 40, [True] * 30 + [False] * 10), "feedback": paired_test([False] * 8, [True] * 8)})
    history = registry.history(NAME)
    decision = promote_if_better(registry, NAME, challenger, "production", rule="better", data_dir=data)
    assert not decision["promote"] and decision["promotion"] is None
    assert decision["reasons"][0].startswith("test set: worse by more than the margin")
    assert registry.aliases(NAME)["production"] == champion and registry.history(NAME) == history
    recorded = json.loads((registry.resolve(NAME, challenger) / f"decision-{champion}" / DECISION_FILE).read_text())
    assert recorded["gate"]["test"]["verdict"] == "worse" and recorded["gate"]["test"]["only_reference"] == 10
    again = promote_if_better(registry, NAME, challenger, "production", rule="better", data_dir=data)
    assert again["time"] == recorded["time"], "the same pair is decided once; the record is reused"


def test_the_champion_is_not_its_own_challenger(two_versions):
    registry, champion, _, data = two_versions
    decision = promote_if_better(registry, NAME, "production", champion, data_dir=data)
    assert not decision["promote"] and decision["reasons"] == ["the challenger is the champion"]
    assert registry.attachments(NAME, champion) == {}


def test_a_decision_to_promote_that_a_crash_left_unfinished_is_finished(tmp_path):
    "The decision is attached before the alias moves; a re-run finds it and moves the alias (through the gate)."
    registry = Registry(tmp_path / "registry")
    champion = registry.register(make_demo_run(tmp_path / "a", accuracy=0.9, macro_f1=0.9).path)
    registry.promote(NAME, champion, "production")
    challenger = registry.register(make_demo_run(tmp_path / "b", accuracy=0.95, macro_f1=0.95, seed=1).path)
    recorded = {"model": NAME, "champion": champion, "challenger": challenger, "promotion": None, "promote": True,
                "rule": "significant", "alpha": 0.05, "reasons": ["better on feedback: 0.1000 -> 0.9000 on 10 held-out feedback texts"],
                "tolerance": 0.005, "evidence": {}, "time": "2026-01-01T00:00:00+00:00"}
    (tmp_path / "decision").mkdir()
    (tmp_path / "decision" / DECISION_FILE).write_text(json.dumps(recorded))
    registry.attach(NAME, challenger, f"decision-{champion}", tmp_path / "decision")
    decision = promote_if_better(registry, NAME, challenger, champion)  # no dataset needed: nothing is evaluated again
    assert decision["promotion"]["to"] == challenger and registry.aliases(NAME)["production"] == challenger
    assert f"decision-{champion}/{DECISION_FILE}" in registry.history(NAME)[-1]["reason"]
