"""The flywheel's proof, serve-free and smoke-sized: champion A answers a slice of traffic wrongly and users correct it;
a turn makes challenger B from A's dataset and the corrections, with lineage back to both; B gets the held-out part
of the slice right more often than A, significantly; the gate promotes B and the registry records why; a second turn
with no new feedback changes nothing."""
from __future__ import annotations

import json
from collections import Counter

from flywheel_fixtures import CHALLENGER_TRAINING, FAST_OPTIMIZATION, SLICE_TEXTS

from ainative.data import load_splits, read_manifest
from ainative.flywheel import (DECISION_FILE, FlywheelConfig, champion_data_dir, check_trigger, flywheel_turn, predict_labels,
                               read_holdout, retrain)
from ainative.monitor import RequestStore, default_database_url, request_row
from ainative.registry import Registry

NAME = "intent-classifier"


def serve_and_correct(registry: Registry, version: str, texts: list[str]) -> tuple[str, list[int]]:
    """Log version's answers to `texts` as a server would, then correct each with the label version predicts least on
    them (so the slice is one A gets wrong); the label and the feedback ids."""
    model, tokenizer = registry.load_model(NAME, version)
    predicted = predict_labels(model, tokenizer, texts)
    labels = sorted(model.config.label2id)
    counts = Counter(predicted)
    correct = min(labels, key=lambda label: (counts[label], label))
    store = RequestStore(default_database_url(registry.root, NAME))
    try:
        store.write_requests([request_row(f"req-{i}", 0, {"intent": label, "confidence": 0.5, "model_version": version, "top_k": []},
                                          text, 0.01, at=1000.0 + i) for i, (text, label) in enumerate(zip(texts, predicted))])
        stored = store.add_feedback([{"request_id": f"req-{i}", "label": correct} for i in range(len(texts))], labels, at=2000.0)
        ids = [row[0] for row in store.engine.connect().exec_driver_sql("SELECT id FROM feedback ORDER BY id")]
    finally:
        store.close()
    assert sum(not row["correct"] for row in stored) >= 0.8 * len(texts), "the slice must be one the champion gets wrong"
    return correct, ids


def test_a_turn_learns_the_corrected_slice_and_a_second_turn_changes_nothing(champion):
    registry = Registry(champion["registry"])
    a = champion["version"]
    slice_label, feedback_ids = serve_and_correct(registry, a, SLICE_TEXTS)
    test_text = load_splits(champion["run"] / "data")["test"].text.iloc[0]
    store = RequestStore(default_database_url(registry.root, NAME))
    try:  # two corrections the dataset must refuse: a text of the fixed test split, and a label A does not know
        refused = store.add_feedback([{"text": f"  {test_text} ", "label": "refund"}, {"text": "beam me up", "label": "teleport"}],
                                     ["refund", "teleport"], at=3000.0)
    finally:
        store.close()
    in_test, unknown = len(feedback_ids) + 1, len(feedback_ids) + 2
    config = FlywheelConfig(registry_dir=str(registry.root), min_new_feedback=len(SLICE_TEXTS), promote_if="significant")

    trigger = check_trigger(config)
    assert trigger["turn"] and trigger["new_feedback"] == len(SLICE_TEXTS) + len(refused) and trigger["since"] is None

    report = flywheel_turn(config, training=CHALLENGER_TRAINING, optimization=FAST_OPTIMIZATION)
    b = report["challenger"]
    print(json.dumps({part: report["evidence"][part] for part in ("test", "feedback")}, indent=1))
    assert report["status"] == "promoted", report["decision"]["reasons"]

    # lineage: B's dataset names A's dataset and exactly the feedback rows it took; B names its dataset and A
    a_data = read_manifest(champion["run"] / "data")
    b_manifest = registry.show(NAME, b)
    b_data_dir = champion_data_dir(registry, NAME, b)
    assert b_data_dir == registry.resolve(NAME, b) / "data" / "dataset", "the dataset travels with the version"
    b_data = read_manifest(b_data_dir)
    assert b_manifest["parent"] == a and b_manifest["data_version"] == b_data["version"] != a_data["version"]
    assert b_data["parent"] == a_data["version"] == b_manifest["params"]["flywheel"]["parent_data_version"]
    assert b_manifest["params"]["training"]["base_model"] == str(registry.resolve(NAME, a) / "model"), "warm-started from A"
    assert b_manifest["params"]["flywheel"]["base_model"] == champion["manifest"]["params"]["training"]["base_model"]
    recorded = b_data["feedback"]
    assert sorted(recorded["added"] + recorded["held_out"]) == feedback_ids and recorded["held_out"] and recorded["added"]
    assert {reason: ids for reason, ids in recorded["skipped"].items() if ids} == {"in_test": [in_test], "unknown_label": [unknown]}
    b_splits, a_splits = load_splits(b_data_dir), load_splits(champion["run"] / "data")
    assert len(b_splits["train"]) == len(a_splits["train"]) + len(recorded["added"])
    assert b_splits["test"].equals(a_splits["test"]), "the fixed test split never changes"
    holdout = read_holdout(b_data_dir)
    assert sorted(holdout.feedback_id) == recorded["held_out"] and set(holdout.label) == {slice_label}
    assert not set(holdout.text) & set(b_splits["train"].text), "a held-out text is never trained on"

    # B gets the held-out part of the corrected slice right more often than A did, and not worse on the test set
    evidence = report["evidence"]
    feedback = evidence["feedback"]
    assert feedback["examples"] == len(recorded["held_out"])
    assert feedback["challenger_accuracy"] > feedback["champion_accuracy"] and feedback["p_better"] < config.alpha
    gate = report["decision"]["gate"]  # not worse: on the 36 test texts alone, or (too few to decide) pooled with the feedback
    assert gate["passed"] and gate[gate["decided_on"]]["verdict"] == "not worse" and gate["test"]["n"] == len(a_splits["test"])
    model, tokenizer = registry.load_model(NAME, "production")  # what servers watching the alias now load
    answers = predict_labels(model, tokenizer, holdout.text.tolist())
    assert sum(answer == slice_label for answer in answers) / len(answers) == feedback["challenger_accuracy"]

    # the decision and its evidence are in the registry, and the alias history says why production moved
    assert registry.aliases(NAME)["production"] == b and registry.aliases(NAME)["challenger"] == b
    decision = json.loads((registry.resolve(NAME, b) / f"decision-{a}" / DECISION_FILE).read_text())
    assert decision["promote"] and decision["evidence"]["feedback"] == feedback
    last = registry.history(NAME)[-1]
    assert (last["alias"], last["from"], last["to"]) == ("production", a, b)
    assert f"decision-{a}/{DECISION_FILE}" in last["reason"] and "better on feedback" in last["reason"]
    assert last["gate"]["method"] == "decision given by the caller" and last["gate"]["decision"] == gate[gate["decided_on"]]
    assert "onnx" in registry.attachments(NAME, b), "the challenger was optimised, so it can serve"
    assert registry.verify(NAME) == []

    # a second turn with no new feedback changes nothing: no trigger, and even forced, no dataset, version or alias
    versions, aliases, history = registry.versions(NAME), registry.aliases(NAME), registry.history(NAME)
    again = flywheel_turn(config, training=CHALLENGER_TRAINING, optimization=FAST_OPTIMIZATION)
    assert again["status"] == "no_turn" and again["trigger"]["new_feedback"] == 0
    forced = retrain(config, CHALLENGER_TRAINING, FAST_OPTIMIZATION)
    assert forced.status == "nothing_new" and forced.run is None and forced.challenger is None
    assert (registry.versions(NAME), registry.aliases(NAME), registry.history(NAME)) == (versions, aliases, history)
