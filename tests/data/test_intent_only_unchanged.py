"""Entities (issue 28) changed the data stage; intent-only data must not notice: the same parquet files, the same
`split_sha256` and the same `data_version` as before the change. The values below were computed with the data stage
as it was before entities existed (commit 0180430).

A failure here means existing runs and registered versions would no longer match their data. (If pandas or pyarrow
were upgraded, the parquet bytes alone may change: then only the `files` assertions fail, and the content hashes
still hold.)"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ainative.data import NAMED_DATASETS, DataConfig, prepare_data

REPO = Path(__file__).resolve().parents[2]

BEFORE = {
    "support_intents": {
        "version": "data-0726e3548cb9c7bb",
        "split_sha256": {"train": "d9820c9c5228f72e0aaf13edca79aceb01c61dc288484c2cf0040e6a5c1aedb8",
                         "validation": "14b023dcb07e19e002c32e09abf78db1da0bc8f1b2909380db0a6280177b5deb",
                         "test": "568728a652d06a6460562b6618d370eddd20d8d80e7318e11467f9e98be5a3cb"},
        "files": {"train.parquet": "7a989e5803460a5f604486ca203fd03a51d1f04aba9ff2cc3b4bb027d8c5dc5f",
                  "validation.parquet": "584012da7758208206f256c6fe9e574ed3573f7bfbfda59a146d8e354e54fb6e",
                  "test.parquet": "a737ca9bb62b1f1cf5b7a2f3e78fcb37cfcbd755e81d88da664e38580c58c5f4"},
    },
    "jsonl_file": {
        "version": "data-de3df53b09d66f5e",
        "split_sha256": {"train": "dce29d241e380caeda1a204066badefb193869a1229573e5bdc7efa27cdefdac",
                         "validation": "cdfeed96e6d5f933bf3829eb0d5da3e2d21a602d09ce85252223e585e05a5a7b",
                         "test": "6f9580c5c09eb5b10f35916a6e823d7821a606039d522c668aaf4b149dfd87af"},
        "files": {"train.parquet": "45133e9a677a601eb710fd8a5047f51ff06f943e63d920a37cd12d6af1fb9992",
                  "validation.parquet": "bb900b46b1fde5174ea945f474c53ec5bd9e6402b02799ca6995f4ad0dfbf98a",
                  "test.parquet": "c9dafb0df70cacf5ab052d5b25e4bd5548d501777f3beac809994730e6d9ee7b"},
    },
    "banking77": {
        "version": "data-2cddc0d15833f7bc",
        "split_sha256": {"train": "2af637114cb212c6bee9d5b3187260790c61474088e9d027d38777293a082a35",
                         "validation": "4a68df799f15b25bcab0da3ba66d613c2ce4b9746b04314ecbbaac4c892ad93c",
                         "test": "8fe3626fc4e55ccfb58d79f30b49c3942a6bcdd2d379744cceb284c8556aea83"},
    },
}
MANIFEST_KEYS = ["conflicts", "counts", "created", "dropped", "files", "id2label", "label2id", "label_counts", "long_texts",
                 "num_labels", "out_of_scope", "params", "source", "split_sha256", "version"]


def _check(manifest: dict, expected: dict):
    assert manifest["version"] == expected["version"]
    assert manifest["split_sha256"] == expected["split_sha256"]
    if "files" in expected: assert manifest["files"] == expected["files"]
    assert sorted(manifest) == MANIFEST_KEYS  # no `entities` entry, nothing else new


def test_the_shipped_dataset_keeps_its_version_and_files(tmp_path):
    prepared = prepare_data(DataConfig(run_dir=str(tmp_path / "run")))
    _check(prepared.manifest, BEFORE["support_intents"])
    assert list(prepared.splits["train"].columns) == ["text", "label", "row"]


def test_a_jsonl_file_without_entities_keeps_its_version_and_files(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps({"text": f"question {i} about {label} please", "label": label}) + "\n"
                            for label in ("billing", "shipping", "returns") for i in range(12)))
    _check(prepare_data(DataConfig(dataset=str(path), run_dir=str(tmp_path / "run"))).manifest, BEFORE["jsonl_file"])


def test_banking77_keeps_its_version(tmp_path):
    data_dir = Path(os.environ.get("AINATIVE_DATA_DIR") or REPO.parent / "shared" / "data")
    if not all((data_dir / "banking77" / name).is_file() for name in NAMED_DATASETS["banking77"].files):
        pytest.skip(f"{data_dir / 'banking77'} is absent (set AINATIVE_DATA_DIR); nothing is downloaded here")
    prepared = prepare_data(DataConfig(dataset="banking77", run_dir=str(tmp_path / "run"), data_dir=str(data_dir),
                                       cache_dir=str(tmp_path / "cache")))
    _check(prepared.manifest, BEFORE["banking77"])
