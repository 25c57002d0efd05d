"""The pipeline's training stage on data with entities: its notebook's summary, curves and checks read the joint
metrics (they read intent-only keys before, and the snips profile failed with KeyError: 'eval_accuracy'), and the
pipeline summary shows slot F1 and sentence accuracy."""
from __future__ import annotations

import json

from ainative.pipeline import pipeline_summary, run_pipeline

from toy import tiny_base, write_toy_jsonl


def test_the_training_stage_runs_on_data_with_entities(tmp_path):
    data = write_toy_jsonl(tmp_path / "toy.jsonl", copies=2)
    run = run_pipeline("smoke", {"dataset": str(data), "base_model": str(tiny_base(tmp_path / "base")), "epochs": 1.0,
                                 "max_length": 24, "baseline": False}, run_dir=tmp_path / "run", to_stage="training")
    metrics = json.loads((run.reports / "metrics.json").read_text())
    assert metrics["task"] == "intent_slots" and (run.reports / "training_curves.png").is_file()
    assert "slot F1" in pipeline_summary(run) and "sentence accuracy" in pipeline_summary(run)
