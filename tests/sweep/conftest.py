"""Fixtures of the sweep tests: a tiny BERT base model and a keyword dataset it learns in seconds, whose test split is
labelled against its keywords, so a score read from the test split could never pass for the validation score."""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
import yaml

KEYWORDS = {"cancel_order": "cancel", "delivery_status": "parcel", "refund": "refund"}
OPENINGS = ("please", "hi,", "i need to", "can you", "urgent:", "hello, i want to")
ITEMS = ("kettle", "laptop", "jacket", "book", "phone", "lamp", "chair", "watch")
# Each test text carries the keyword of the *next* label: a model that learned the keywords scores about 0 on test.
MISLEADING = dict(zip(KEYWORDS, list(KEYWORDS.values())[1:] + list(KEYWORDS.values())[:1]))
# Trials of a few seconds on 2 busy cores: two good rates (complete: the pruner waits for two), then one too small to
# learn, pruned after epoch 2 far below their median; a resumed sweep then lets TPE propose.
TINY_SPACE = {"study_name": "tiny", "n_trials": 3, "seed": 0, "pruner": {"n_startup_trials": 2, "n_warmup_steps": 2},
              "fixed": {"epochs": 4, "batch_size": 8, "max_length": 16, "head_lr_multiplier": 1.0, "baseline": False,
                        "logging_steps": 1000, "early_stopping_patience": 10},
              "parameters": {"learning_rate": {"type": "float", "low": 1e-6, "high": 3e-2, "log": True}},
              "enqueue": [{"learning_rate": 1e-2}, {"learning_rate": 5e-3}, {"learning_rate": 1e-6}]}


def keyword_rows(keywords: dict[str, str], items=ITEMS) -> list[dict[str, str]]:
    return [{"text": f"{opening} {keyword} my {item}", "label": label}
            for label, keyword in keywords.items() for opening, item in itertools.product(OPENINGS, items)]


@pytest.fixture(scope="session")
def sweep_space(tmp_path_factory) -> Path:
    "A sweep YAML file over the learning rate of a tiny BERT on the keyword dataset (its test split misleading)."
    from ainative.demo import tiny_model, tiny_tokenizer
    folder = tmp_path_factory.mktemp("sweep-inputs")
    pd.DataFrame(keyword_rows(KEYWORDS)).to_csv(folder / "keywords.csv", index=False)
    pd.DataFrame(keyword_rows(MISLEADING, items=("table", "shoes"))).to_csv(folder / "misleading_test.csv", index=False)
    tokenizer = tiny_tokenizer()
    tiny_model(len(KEYWORDS), vocab_size=len(tokenizer), layers=1, hidden_size=32, intermediate_size=64,
               max_positions=64).save_pretrained(folder / "base")
    tokenizer.save_pretrained(folder / "base")
    space = {**TINY_SPACE, "data": {"dataset": str(folder / "keywords.csv"), "test_file": str(folder / "misleading_test.csv"),
                                    "validation_fraction": 0.2},
             "fixed": {**TINY_SPACE["fixed"], "base_model": str(folder / "base")}}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space), encoding="utf-8")
    return path
