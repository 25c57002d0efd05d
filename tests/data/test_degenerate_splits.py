"""Degenerate data: every way a source can leave a split empty (or with one label) ends in a data error.

Each path from a file (or a 🤗 dataset, or a named dataset) to the three splits is walked with inputs that leave
nothing to split: no rows, every row dropped by validation, by cleaning (duplicates) or as leakage, a single
label. Each must stop with its own AinativeError subclass saying what, where and how to fix it, never with a
scikit-learn traceback, and must not write a data/ folder (nor a manifest with an empty split).
"""
from __future__ import annotations

import csv
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from ainative.core import (AinativeError, ClassTooSmallError, ConfigError, DataError, EmptySplitError,
                           SingleLabelError)
from ainative.data import NAMED_DATASETS, SPLITS, DataConfig, DatasetSpec, prepare_data

LABELS = ("billing", "shipping", "returns")


def rows(per_label: int = 12, labels=LABELS, tag: str = "") -> list[tuple[str, str]]:
    return [(f"{tag}question {i} about {label} please help", label) for label in labels for i in range(per_label)]


def write_csv(path: Path, body: list[tuple[str, str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(body)
    return str(path)


@dataclass
class Case:
    id: str
    build: Callable[[Path], dict[str, Any]]   # tmp_path -> DataConfig params (or {"dataset_object": ...})
    error: type[AinativeError]
    what: tuple[str, ...]                     # phrases the message must hold
    where: str                                # phrase `where` must hold
    fix: str                                  # phrase `fix` must hold


CASES = [
    Case("header_only_file", lambda t: {"dataset": write_csv(t / "empty.csv", [])},
         EmptySplitError, ("train split has no rows", "no data rows"), "empty.csv", "Add examples"),
    Case("every_row_dropped_as_bad", lambda t: {"dataset": write_csv(t / "bad.csv", [("", "a"), ("  ", "b"), ("x", "")]),
                                                "on_bad_rows": "drop"},
         EmptySplitError, ("train split has no rows", "all 3 rows were dropped", "empty_text: 2", "missing_label: 1"),
         "bad.csv", "on_bad_rows='error'"),
    Case("every_test_row_leaks_from_train", lambda t: {"dataset": write_csv(t / "train.csv", rows()),
                                                       "test_file": write_csv(t / "test.csv", rows()[:5])},
         EmptySplitError, ("test split has no rows", "all 5 rows were dropped", "leakage_train: 5"), "test.csv",
         "texts that train does not contain"),
    Case("every_validation_row_leaks_from_train",
         lambda t: {"dataset": write_csv(t / "train.csv", rows()), "validation_file": write_csv(t / "val.csv", rows()[:4]),
                    "test_file": write_csv(t / "test.csv", rows(1, tag="new "))},
         EmptySplitError, ("validation split has no rows", "leakage_train: 4"), "val.csv", "texts that train does not contain"),
    Case("header_only_test_file", lambda t: {"dataset": write_csv(t / "train.csv", rows()),
                                             "test_file": write_csv(t / "test.csv", [])},
         EmptySplitError, ("test split has no rows", "no data rows"), "test.csv", "Add examples"),
    Case("header_only_train_with_a_test_file", lambda t: {"dataset": write_csv(t / "train.csv", []),
                                                          "test_file": write_csv(t / "test.csv", rows(1))},
         EmptySplitError, ("train split has no rows",), "train.csv", "Add examples"),
    Case("single_label", lambda t: {"dataset": write_csv(t / "one.csv", rows(30, labels=("billing",)))},
         SingleLabelError, ("only one label", "'billing'", "30 rows"), "one.csv", "at least two"),
    Case("single_label_with_a_test_file", lambda t: {"dataset": write_csv(t / "one.csv", rows(30, labels=("billing",))),
                                                     "test_file": write_csv(t / "test.csv", rows(1, labels=("billing",), tag="new "))},
         SingleLabelError, ("only one label",), "one.csv", "at least two"),
    Case("single_label_after_dropping_bad_rows",
         lambda t: {"dataset": write_csv(t / "mostly_bad.csv", rows(30, labels=("billing",)) + [("", "shipping")] * 12),
                    "on_bad_rows": "drop"},
         SingleLabelError, ("only one label",), "mostly_bad.csv", "at least two"),
    Case("every_row_a_duplicate", lambda t: {"dataset": write_csv(t / "dup.csv", [("same text", "billing"), ("same text", "returns")] * 20)},
         ClassTooSmallError, ("fewer than 10 examples",), "train split", "Add examples"),
    Case("text_and_label_the_same_column", lambda t: {"dataset": write_csv(t / "same.csv", rows()), "label_column": "text"},
         ConfigError, ("text_column and label_column",), "", "label_column="),
]


def run(case: Case, tmp_path: Path):
    params = case.build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_data(DataConfig(run_dir=str(tmp_path / "run"), **params))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_degenerate_input_raises_its_specific_data_error(case: Case, tmp_path: Path):
    with pytest.raises(AinativeError) as info:
        run(case, tmp_path)
    err = info.value
    assert type(err) is case.error, f"{type(err).__name__}: {err}"
    for phrase in case.what: assert phrase in err.what, f"{phrase!r} not in {err.what!r}"
    assert case.where in (err.where or ""), err.where
    assert err.fix and case.fix in err.fix, err.fix
    assert not (tmp_path / "run" / "data").exists()


def test_an_empty_hf_dataset_split_is_a_data_error(tmp_path):
    datasets = pytest.importorskip("datasets")
    empty = datasets.Dataset.from_dict({"text": [], "label": []},
                                       features=datasets.Features({"text": datasets.Value("string"),
                                                                   "label": datasets.ClassLabel(names=["a", "b"])}))
    with pytest.raises(EmptySplitError, match="train split has no rows"):
        prepare_data(DataConfig(run_dir=str(tmp_path / "run")), dataset_object=datasets.DatasetDict({"train": empty}))


def test_a_named_dataset_with_an_empty_official_test_split_is_a_data_error(tmp_path, monkeypatch):
    def parse(folder: Path) -> dict[str, pd.DataFrame]:
        train = pd.DataFrame(rows(), columns=["text", "label"]).assign(row=lambda df: range(1, len(df) + 1))
        return {"train": train, "test": train.iloc[:0]}
    (tmp_path / "local" / "emptytest").mkdir(parents=True)
    monkeypatch.setitem(NAMED_DATASETS, "emptytest", DatasetSpec("emptytest", {}, "http://127.0.0.1:9/", parse))
    with pytest.raises(EmptySplitError) as info:
        prepare_data(DataConfig(dataset="emptytest", data_dir=str(tmp_path / "local"), run_dir=str(tmp_path / "run")))
    assert "test split has no rows" in info.value.what and "emptytest" in info.value.where


@pytest.mark.parametrize("seed", range(6))
def test_random_tiny_files_give_good_splits_or_a_data_error(seed, tmp_path):
    "Small random files (few rows, few labels, duplicates, blanks, leaks): never a traceback, never an empty split."
    rng = random.Random(seed)
    for attempt in range(25):
        folder = tmp_path / f"a{attempt}"
        folder.mkdir()
        labels = LABELS[:rng.randint(1, 3)]
        pool = [(f"text {rng.randint(0, 30)}", rng.choice(labels)) for _ in range(rng.randint(0, 45))]
        pool += [(rng.choice(["", " "]), rng.choice(labels)) for _ in range(rng.randint(0, 2))]
        params: dict[str, Any] = {"dataset": write_csv(folder / "train.csv", pool),
                                  "on_bad_rows": rng.choice(["error", "drop"])}
        if rng.random() < 0.4:
            params["test_file"] = write_csv(folder / "test.csv", rng.sample(pool, min(len(pool), rng.randint(0, 4))))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prepared = prepare_data(DataConfig(run_dir=str(folder / "run"), **params))
        except AinativeError as err:
            assert isinstance(err, (DataError, ConfigError)) and err.fix, repr(err)
            assert not (folder / "run" / "data").exists()
            continue
        counts = prepared.manifest["counts"]
        assert all(counts[split] > 0 for split in SPLITS), counts
        assert prepared.manifest["num_labels"] >= 2
