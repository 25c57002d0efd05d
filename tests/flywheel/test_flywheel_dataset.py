"""Dataset from feedback: what the request log gives, the rules that keep the new dataset clean, and the lineage and
integrity of what is written. Real SQLite logs and real files, no training."""
from __future__ import annotations

import pandas as pd
import pytest

from ainative.core import DataFileNotFoundError, IntegrityError
from ainative.data import load_splits, out_of_scope_record, read_manifest, write_data_dir
from ainative.demo import DEMO_LABELS, make_demo_run
from ainative.flywheel import (FlywheelConfig, build_feedback_dataset, champion_data_dir, feedback_mark, held_out,
                               merge_feedback, new_since, read_feedback, read_holdout, usable_feedback, write_feedback_dataset)
from ainative.monitor import RequestStore, default_database_url, request_row
from ainative.registry import Registry

SALT = "a-test-salt-of-32-characters-ok!"


def answer(intent: str, version: str = "v0001") -> dict:
    return {"intent": intent, "confidence": 0.5, "model_version": version, "top_k": []}


@pytest.fixture
def store(tmp_path):
    opened = RequestStore(default_database_url(tmp_path / "registry", "intent-classifier"))
    yield opened
    opened.close()


def test_feedback_on_a_logged_answer_takes_its_latest_text_and_a_correction_replaces_the_earlier(store):
    store.write_requests([request_row("r1", 0, answer("refund"), "first text", 0.01, at=10.0),
                          request_row("r1", 0, answer("refund"), "reused id, later text", 0.01, at=20.0)])
    store.add_feedback([{"request_id": "r1", "label": "cancel_order"}], DEMO_LABELS, at=30.0)
    store.add_feedback([{"request_id": "r1", "label": "delivery_status"}], DEMO_LABELS, at=40.0)
    feedback = read_feedback(store)
    assert feedback[["text", "label", "predicted"]].values.tolist() == [["reused id, later text", "delivery_status", "refund"]]


def test_hashed_texts_cannot_be_learned_from_and_are_reported(tmp_path):
    hashed = RequestStore(default_database_url(tmp_path / "registry", "m"), text_privacy="hash", hash_salt=SALT)
    try:
        hashed.write_requests([request_row("r1", 0, answer("refund"), "where is it", 0.01, "hash", SALT, at=1.0)])
        hashed.add_feedback([{"request_id": "r1", "label": "delivery_status"}, {"text": "free text", "label": "refund"}], DEMO_LABELS)
        feedback = read_feedback(hashed)
    finally:
        hashed.close()
    usable, skipped = usable_feedback(feedback, DEMO_LABELS, [])
    assert usable.empty and sorted(skipped["no_text"]) == feedback.feedback_id.tolist()


def test_new_since_misses_neither_a_later_row_nor_a_reused_id():
    feedback = pd.DataFrame({"feedback_id": [1, 2, 3], "at": [10.0, 20.0, 15.0], "text": ["a", "b", "c"], "label": ["refund"] * 3})
    mark = feedback_mark(feedback.iloc[:2])
    assert mark == {"at": 20.0, "id": 2}
    assert new_since(feedback, mark).feedback_id.tolist() == [3]  # an earlier clock, a larger id
    reused = pd.DataFrame({"feedback_id": [2], "at": [25.0], "text": ["b"], "label": ["cancel_order"]})
    assert new_since(reused, mark).feedback_id.tolist() == [2]  # SQLite reused the id of a replaced correction


def test_a_held_out_text_stays_held_out_and_a_later_correction_updates_it():
    text = next(f"voucher {i} refused" for i in range(100) if held_out(f"voucher {i} refused", 0.5))
    splits = {"train": pd.DataFrame({"text": ["where is my kettle"], "label": ["delivery_status"]}),
              "validation": pd.DataFrame({"text": ["refund the lamp"], "label": ["refund"]}),
              "test": pd.DataFrame({"text": ["cancel the chair"], "label": ["cancel_order"]})}
    first = merge_feedback(splits, pd.DataFrame(columns=["feedback_id", "text", "label"]),
                           pd.DataFrame({"feedback_id": [1], "at": [1.0], "text": [text], "label": ["refund"]}), 0.5)
    assert first.held_out == [1] and first.added == []
    second = merge_feedback(first.splits, first.holdout,
                            pd.DataFrame({"feedback_id": [2], "at": [2.0], "text": [text], "label": ["cancel_order"]}), 0.5)
    assert second.held_out == [2] and text not in set(second.splits["train"].text)
    assert second.holdout[["feedback_id", "label"]].values.tolist() == [[2, "cancel_order"]]


def test_test_texts_never_enter_after_normalisation():
    feedback = pd.DataFrame({"feedback_id": [1], "at": [1.0], "text": ["  Cancel   the\u00a0chair "], "label": ["refund"]})
    usable, skipped = usable_feedback(feedback, DEMO_LABELS, ["Cancel the chair"])
    assert usable.empty and skipped["in_test"] == [1]


@pytest.fixture
def written(tmp_path):
    splits = {"train": pd.DataFrame({"text": [f"where is my item {i}" for i in range(4)], "label": ["delivery_status"] * 4}),
              "validation": pd.DataFrame({"text": ["refund the lamp"], "label": ["refund"]}),
              "test": pd.DataFrame({"text": ["cancel the chair"], "label": ["cancel_order"]})}
    feedback = pd.DataFrame({"feedback_id": list(range(1, 21)), "at": [float(i) for i in range(1, 21)],
                             "text": [f"my voucher number {i} was refused" for i in range(20)], "label": ["refund"] * 20})
    merge = merge_feedback(splits, pd.DataFrame(columns=["feedback_id", "text", "label"]), feedback, 0.25)
    parent = {"version": "data-parent", "label2id": {label: i for i, label in enumerate(DEMO_LABELS)}, "source": {"name": "toy"}}
    manifest = write_feedback_dataset(tmp_path / "data", merge, parent, {"no_text": [99]}, feedback_mark(feedback))
    return tmp_path / "data", manifest, merge


def test_the_new_dataset_reads_like_the_data_stage_and_records_its_lineage(written):
    folder, manifest, merge = written
    assert read_manifest(folder) == manifest
    assert manifest["parent"] == "data-parent" and manifest["source"]["kind"] == "feedback"
    assert sorted(manifest["feedback"]["added"] + manifest["feedback"]["held_out"]) == list(range(1, 21))
    assert manifest["feedback"]["skipped"]["no_text"] == [99] and manifest["feedback"]["mark"] == {"at": 20.0, "id": 20}
    splits = load_splits(folder)
    assert len(splits["train"]) == 4 + len(merge.added) and splits["train"].label_id.max() < len(DEMO_LABELS)
    assert read_holdout(folder).feedback_id.tolist() == merge.held_out
    assert manifest["version"].startswith("data-") and manifest["version"] != "data-parent"


def test_a_tampered_holdout_is_refused(written):
    folder, manifest, _ = written
    holdout = read_holdout(folder)
    holdout.assign(label="cancel_order").to_parquet(folder / manifest["feedback"]["holdout"]["file"], index=False)
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        read_holdout(folder)


@pytest.fixture
def demo_champion(tmp_path):
    run = make_demo_run(tmp_path / "run")
    registry = Registry(tmp_path / "registry")
    version = registry.register(run.path)
    registry.promote("intent-classifier", version, "production")
    return registry, version, run


def test_the_champion_dataset_is_found_through_its_run_and_a_missing_one_is_a_clear_error(demo_champion):
    registry, version, run = demo_champion
    assert champion_data_dir(registry, "intent-classifier", "production") == run.data
    (run.data / "manifest.json").unlink()
    with pytest.raises(DataFileNotFoundError, match="neither attached to the version nor in its run") as error:
        champion_data_dir(registry, "intent-classifier", version)
    assert "attach" in error.value.fix


def test_no_new_feedback_writes_nothing(demo_champion, tmp_path, store):
    registry, version, _ = demo_champion
    made = build_feedback_dataset(registry, "intent-classifier", version, store, tmp_path / "turn")
    assert made.manifest is None and made.run is None and made.new_feedback == 0
    assert not (tmp_path / "turn").exists(), "a turn with nothing new leaves no folder behind"


def test_out_of_scope_rows_held_out_of_the_champion_stay_in_the_next_dataset(demo_champion, tmp_path, store):
    "The abstention stage chooses the challenger's threshold on them: losing them would leave it nothing to choose with."
    registry, version, run = demo_champion
    in_scope = pd.DataFrame({"text": [f"where is my {thing}" for thing in DEMO_LABELS], "label": DEMO_LABELS})
    oos = pd.DataFrame({"text": ["what is the weather on mars", "tell me a joke"], "label": ["oos", "oos"]})
    splits = {split: in_scope.assign(text=in_scope.text + f" ({split})") if split == "train" else
              pd.concat([in_scope, oos]).assign(text=lambda frame: frame.text + f" ({split})") for split in ("train", "validation", "test")}
    write_data_dir(run.data, splits, {"version": read_manifest(run.data)["version"], "label2id": {l: i for i, l in enumerate(DEMO_LABELS)},
                                      "source": {"name": "toy"}, "out_of_scope": out_of_scope_record(splits, "holdout", "oos")})
    store.add_feedback([{"text": f"my voucher number {i} was refused", "label": "refund"} for i in range(10)], DEMO_LABELS)
    made = build_feedback_dataset(registry, "intent-classifier", version, store, tmp_path / "turn")
    assert made.manifest["out_of_scope"] == {"handling": "holdout", "label": "oos", "rows": {"train": 0, "validation": 2, "test": 2}}
    carried = load_splits(made.run.data, out_of_scope=True)
    assert carried["test"].text.tolist()[-2:] == (oos.text + " (test)").tolist()
    assert (carried["validation"].label_id == -1).sum() == 2 and "oos" not in made.manifest["label2id"]


def test_holdout_fraction_must_leave_something_on_both_sides():
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="holdout_fraction"):
            FlywheelConfig(holdout_fraction=fraction)
