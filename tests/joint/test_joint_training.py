"Training the joint model for a few steps on a toy span JSONL dataset: the run's model and metrics."
import json
import os
from pathlib import Path

import pytest

from ainative.data import DataConfig, prepare_data
from ainative.joint import JointIntentSlotModel
from ainative.training import TrainingConfig, train_model
from toy import write_toy_jsonl

JOINT_METRICS = ("intent_accuracy", "slot_f1", "slot_precision", "slot_recall", "sentence_accuracy", "slot_types", "correct")


def train_toy(tmp_path: Path, base: Path, intents: bool = True, **overrides):
    data = write_toy_jsonl(tmp_path / "toy.jsonl", copies=2, intents=intents)
    prepare_data(DataConfig(dataset=str(data), run_dir=str(tmp_path / "run")))
    settings = dict(run_dir=str(tmp_path / "run"), base_model=str(base), epochs=2, learning_rate=2e-3, batch_size=16,
                    max_length=24, logging_steps=5, baseline=False)
    return train_model(TrainingConfig(**{**settings, **overrides}))


def test_train_model_dispatches_data_with_entities_to_the_joint_model(tmp_path, tiny_base_dir):
    result = train_toy(tmp_path, tiny_base_dir, slot_loss_weight=2.0, baseline=True)
    metrics = json.loads((result.run.reports / "metrics.json").read_text())
    assert metrics["task"] == "intent_slots" and metrics["tag_labels"][0] == "O"
    for split in ("validation", "test"):
        assert all(key in metrics[split] for key in JOINT_METRICS), sorted(metrics[split])
        assert 0 <= metrics[split]["sentence_accuracy"] <= 1
        assert len(metrics[split]["correct"]) == metrics[split]["examples"]
    assert (result.run.reports / "slot_types.csv").is_file() and (result.run.reports / "slot_f1.png").is_file()
    config = json.loads((result.run.model / "config.json").read_text())
    assert config["task"] == "intent_slots" and config["slot_loss_weight"] == 2.0
    assert config["tag_labels"] == metrics["tag_labels"] and set(config["label2id"]) == {"book_flight", "get_weather"}
    assert metrics["classical"]["test"]["slot_f1"] > 0.9  # a CRF learns the toy slots; scored like the transformer
    assert set(metrics["classical"]["test"]) >= {"intent_accuracy", "slot_f1", "sentence_accuracy"}
    model = JointIntentSlotModel.from_pretrained(result.run.model)  # both heads come back
    assert model.tagger.out_features == len(metrics["tag_labels"]) and model.classifier.out_features == 2
    assert not list(result.run.model.glob("*.bin"))


def test_entities_only_data_trains_the_tag_head_alone(tmp_path, tiny_base_dir):
    result = train_toy(tmp_path, tiny_base_dir, intents=False, epochs=1, baseline=True)
    test = result.metrics["test"]
    assert "baseline" not in result.metrics and result.metrics["classical"]["test"]["intent_accuracy"] is None
    assert test["intent_accuracy"] is None and "slot_f1" in test and "sentence_accuracy" in test
