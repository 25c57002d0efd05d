"""The training stage compares the transformer with the baseline text by text: its predictions must be in row order.
(Its evaluation sampler grouped rows by length, so the paired comparison scored shuffled predictions: `make run` said
the transformer had 10% validation accuracy where the training reported 97%.) Here, in the flywheel's folder because
its tiny BERT learns the keyword dataset in seconds."""
from __future__ import annotations

import pytest

from flywheel_fixtures import TINY_TRAINING, tiny_base_model, write_keyword_dataset


def test_the_families_pair_the_predictions_the_training_scored(tmp_path):
    from ainative.data import DataConfig, prepare_data
    from ainative.training import TrainingConfig, train_model
    run = tmp_path / "run"
    prepare_data(DataConfig(dataset=str(write_keyword_dataset(tmp_path / "keywords.csv")), run_dir=str(run)))
    metrics = train_model(TrainingConfig(run_dir=str(run), base_model=str(tiny_base_model(tmp_path / "base")),
                                         **{**TINY_TRAINING, "baseline": True})).metrics
    assert metrics["validation"]["accuracy"] > 0.5  # it learned something, so the order of its predictions matters
    for split in ("validation", "test"):
        assert metrics["families"]["accuracy"][split]["transformer"] == pytest.approx(metrics[split]["accuracy"]), split
