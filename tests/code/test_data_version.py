"""The data version id: `data-` + 16 hex, the same for the same inputs and parameters, in any process."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ainative.data import DataConfig, data_version, prepare_data

VERSION = re.compile(r"data-[0-9a-f]{16}")
LABELS = ("billing", "shipping", "returns")

SCRIPT = """
import json, sys
from ainative.data import DataConfig, prepare_data
prepared = prepare_data(DataConfig(run_dir=sys.argv[1]))
print(json.dumps({"version": prepared.manifest["version"]}))
"""


def _version_in_subprocess(run_dir: Path, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(run_dir)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout.strip().splitlines()[-1])["version"]
    manifest = json.loads((run_dir / "data" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == version
    return version


def test_same_inputs_give_the_same_id_across_processes(tmp_path):
    first = _version_in_subprocess(tmp_path / "run-a", "0")
    second = _version_in_subprocess(tmp_path / "run-b", "12345")
    assert VERSION.fullmatch(first)
    assert first == second
    in_process = prepare_data(DataConfig(run_dir=str(tmp_path / "run-c"))).manifest["version"]
    assert in_process == first


def _write_csv(path: Path, change_one_char: bool = False) -> Path:
    rows = [[f"question {i} about {label} please help", label] for label in LABELS for i in range(12)]
    if change_one_char: rows[17][0] = rows[17][0].replace("please", "pleas3")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _version(dataset: Path, run_dir: Path, **params) -> str:
    return prepare_data(DataConfig(dataset=str(dataset), run_dir=str(run_dir), **params)).manifest["version"]


@pytest.fixture
def csv_file(tmp_path):
    return _write_csv(tmp_path / "original" / "intents.csv")


def test_id_format(csv_file, tmp_path):
    assert VERSION.fullmatch(_version(csv_file, tmp_path / "run"))


def test_same_file_twice_gives_the_same_id(csv_file, tmp_path):
    assert _version(csv_file, tmp_path / "run-a") == _version(csv_file, tmp_path / "run-b")


def test_id_depends_on_content_not_on_the_folder(csv_file, tmp_path):
    copy = _write_csv(tmp_path / "elsewhere" / "intents.csv")
    assert copy.read_bytes() == csv_file.read_bytes()
    assert _version(csv_file, tmp_path / "run-a") == _version(copy, tmp_path / "run-b")


@pytest.mark.parametrize("params", [{"seed": 7}, {"fractions": (0.6, 0.2, 0.2)}, {"fractions": (0.8, 0.1, 0.1)}],
                         ids=["seed", "fractions-0.6", "fractions-0.8"])
def test_a_changed_parameter_gives_another_id(params, csv_file, tmp_path):
    baseline = _version(csv_file, tmp_path / "run-a")
    changed = _version(csv_file, tmp_path / "run-b", **params)
    assert VERSION.fullmatch(changed)
    assert changed != baseline


def test_one_changed_character_gives_another_id(csv_file, tmp_path):
    edited = _write_csv(tmp_path / "edited" / "intents.csv", change_one_char=True)  # same file name, one char differs
    original_bytes, edited_bytes = csv_file.read_bytes(), edited.read_bytes()
    assert len(original_bytes) == len(edited_bytes)
    assert sum(a != b for a, b in zip(original_bytes, edited_bytes)) == 1
    assert _version(csv_file, tmp_path / "run-a") != _version(edited, tmp_path / "run-b")


def test_data_version_hashes_split_content_and_params():
    import pandas as pd
    splits = {s: pd.DataFrame({"text": [f"{s} one", f"{s} two"], "label": ["a", "b"]})
              for s in ("train", "validation", "test")}
    base = data_version(splits, {"seed": 1})
    assert VERSION.fullmatch(base)
    assert data_version(splits, {"seed": 1}) == base
    assert data_version(splits, {"seed": 2}) != base
    reordered = {**splits, "train": splits["train"].iloc[::-1].reset_index(drop=True)}
    assert data_version(reordered, {"seed": 1}) != base  # order is part of the content
    relabelled = {**splits, "test": splits["test"].assign(label=["a", "a"])}
    assert data_version(relabelled, {"seed": 1}) != base
