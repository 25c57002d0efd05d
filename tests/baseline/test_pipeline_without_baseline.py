"""`ainative pipeline -p baseline=false` runs the training stage without the TF-IDF baseline: the stage notebook's
summary shows the transformer alone instead of failing on the missing baseline scores (a recipe's teachers, chapter
17a, may skip it to save time)."""
from __future__ import annotations

import json

from ainative.pipeline import run_pipeline

from baseline_fixtures import write_templated_dataset
from test_baseline_pipeline import tiny_base_model


def test_the_training_stage_runs_without_the_baseline(tmp_path):
    dataset = write_templated_dataset(tmp_path / "templated.csv")
    run = run_pipeline("smoke", {"dataset": str(dataset), "base_model": str(tiny_base_model(tmp_path / "base")),
                                 "epochs": 1.0, "max_length": 32, "baseline": False}, run_dir=tmp_path / "run", to_stage="training")
    metrics = json.loads((run.reports / "metrics.json").read_text())
    assert "baseline" not in metrics and metrics["test"]["examples"] > 0
