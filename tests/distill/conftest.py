"""Fixtures of the distillation tests: a keyword dataset a tiny model learns in seconds, and a tiny teacher trained on it."""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from distill_fixtures import ITEMS, KEYWORDS, OPENINGS, save_tiny_bert


@pytest.fixture(scope="session")
def keyword_csv(tmp_path_factory) -> Path:
    rows = [{"text": f"{opening} {keyword} my {item}", "label": label}
            for label, keyword in KEYWORDS.items() for opening, item in itertools.product(OPENINGS, ITEMS)]
    path = tmp_path_factory.mktemp("distill-data") / "keywords.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory, keyword_csv) -> Path:
    "A run with the keyword data and a tiny four-layer teacher the training stage trained on it (a few seconds)."
    from ainative.data import DataConfig, prepare_data
    from ainative.training import TrainingConfig, train_model
    folder = tmp_path_factory.mktemp("teacher")
    base = save_tiny_bert(folder / "base")
    prepare_data(DataConfig(dataset=str(keyword_csv), run_dir=str(folder / "run")))
    train_model(TrainingConfig(run_dir=str(folder / "run"), base_model=str(base), epochs=2, batch_size=8, max_length=16,
                               learning_rate=1e-2, logging_steps=1000, baseline=False, early_stopping_patience=10))
    return folder / "run"
