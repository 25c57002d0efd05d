"""A run for the tests of what stages ask of a family: the bundled data and a tiny random classifier on its labels."""
from __future__ import annotations

from pathlib import Path

from ainative.core import RunDir, atomic_write_json
from ainative.data import DataConfig, prepare_data, read_manifest
from ainative.demo import tiny_model


def tiny_data_run(folder: Path, tokenizer) -> Path:
    "A run in `folder` with the bundled data, a tiny random classifier on its labels and test metrics (never a real model)."
    run = RunDir.create(folder)
    prepare_data(DataConfig(run_dir=str(run.path)))
    manifest = read_manifest(run.data)
    tiny_model(sorted(manifest["label2id"], key=manifest["label2id"].get), vocab_size=len(tokenizer)).save_pretrained(run.model)
    tokenizer.save_pretrained(run.model)
    atomic_write_json(run.reports / "metrics.json", {
        "data_version": manifest["version"], "test_sha256": manifest["split_sha256"]["test"],
        "test": {"accuracy": 0.2, "macro_f1": 0.1}})
    return run.path
