"""Out-of-scope rows (CLINC150's `oos`): a class of their own by default, or held out of train and the label map."""
from __future__ import annotations

import pandas as pd
import pytest

from ainative.core import ConfigError, UnseenLabelError
from ainative.data import OUTSIDE_LABEL_MAP, DataConfig, load_splits, prepare_data

INTENTS = {"refund": "please refund my {}", "delivery": "where is my {} now", "cancel": "cancel the order of my {}"}
ITEMS = ["shoes", "phone", "lamp", "desk", "chair", "book", "watch", "bag", "coat", "mug"]
OUT_OF_SCOPE = ["what is the capital of {}", "play a song about {}", "how tall is mount {}"]
PLACES = ["peru", "chile", "nepal", "kenya", "fiji", "oman", "laos", "mali", "chad", "togo"]


def tiny_table(folder, with_oos: bool = True):
    rows = [(template.format(item), label) for label, template in INTENTS.items() for item in ITEMS]
    if with_oos: rows += [(template.format(place), "oos") for template in OUT_OF_SCOPE for place in PLACES]
    path = folder / "tiny.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_class_is_the_default_and_changes_nothing(tmp_path):
    path = tiny_table(tmp_path)
    default = prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "default")))
    explicit = prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "class"), out_of_scope="class"))
    assert default.manifest["version"] == explicit.manifest["version"]
    assert "oos" in default.manifest["label2id"] and default.manifest["num_labels"] == 4
    assert default.manifest["out_of_scope"] == {"handling": "class", "label": "oos",
                                                "rows": {"train": 21, "validation": 6, "test": 3}}
    files = {split: pd.read_parquet(default.run.data / f"{split}.parquet") for split in ("train", "validation", "test")}
    assert all((frame.label_id >= 0).all() for frame in files.values())
    assert {k: len(v) for k, v in load_splits(default.run.data).items()} == {"train": 42, "validation": 12, "test": 6}


def test_holdout_removes_oos_from_train_and_the_label_map(tmp_path):
    prepared = prepare_data(DataConfig(dataset=str(tiny_table(tmp_path)), run_dir=str(tmp_path / "run"), out_of_scope="holdout"))
    manifest = prepared.manifest
    assert "oos" not in manifest["label2id"] and manifest["num_labels"] == 3
    assert manifest["out_of_scope"]["rows"] == {"train": 0, "validation": 6, "test": 3}
    test_file = pd.read_parquet(prepared.run.data / "test.parquet")
    assert (test_file[test_file.label == "oos"].label_id == OUTSIDE_LABEL_MAP).all()
    assert (test_file[test_file.label != "oos"].label_id >= 0).all()
    in_scope, everything = load_splits(prepared.run.data), load_splits(prepared.run.data, out_of_scope=True)
    assert not any((frame.label == "oos").any() for frame in in_scope.values())  # what training and the other stages see
    assert (everything["validation"].label == "oos").sum() == 6 and len(everything["test"]) == len(in_scope["test"]) + 3


def test_holdout_without_any_oos_row_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no row has it") as caught:
        prepare_data(DataConfig(dataset=str(tiny_table(tmp_path, with_oos=False)), run_dir=str(tmp_path / "run"),
                                out_of_scope="holdout"))
    assert "out_of_scope_label" in caught.value.fix


def test_unknown_handling_is_refused():
    with pytest.raises(ConfigError, match="'out_of_scope' = 'drop' is not one of"):
        DataConfig.from_params({"out_of_scope": "drop"})  # how pipeline -p and the CLI build it
    with pytest.raises(ConfigError, match="out_of_scope='drop'"):
        DataConfig(out_of_scope="drop")


def test_tokenizing_labels_outside_the_map_names_them():
    from ainative.model import load_tokenizer, tokenize_splits
    frame = pd.DataFrame({"text": ["refund me", "play jazz"], "label": ["refund", "oos"]})
    with pytest.raises(UnseenLabelError, match=r"1 rows with labels outside the label map: \['oos'\]"):
        tokenize_splits({"test": frame}, load_tokenizer(), {"refund": 0})
