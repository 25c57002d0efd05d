"""Integrity: every damaged, missing or extra file of a version is reported by name, and never loaded or promoted."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ainative.core import IntegrityError, RegistryError

MODEL = "intent-classifier"
WEIGHTS = "model/model.safetensors"


@pytest.fixture
def version(registry, make_run) -> Path:
    "The folder of a freshly registered version v0001."
    assert registry.register(make_run()) == "v0001"
    return registry.resolve(MODEL, "v0001")


def writable(path: Path) -> Path:
    "Registered files are read-only; damaging one needs write permission first."
    path.chmod(0o644)
    return path


def flip_byte(path: Path, offset_from_end: int = 100) -> None:
    with open(writable(path), "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        byte = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))


def truncate(path: Path, keep: int = 1000) -> None:
    os.truncate(writable(path), keep)


def test_a_clean_version_verifies_and_its_files_are_read_only(registry, version):
    assert registry.verify(MODEL) == []
    assert registry.verify(MODEL, "v0001") == []
    weights = version / WEIGHTS
    assert weights.stat().st_mode & 0o222 == 0


def test_flipped_bytes_are_reported_by_name(registry, version):
    flip_byte(version / WEIGHTS)
    problems = registry.verify(MODEL, "v0001")
    assert len(problems) == 1
    assert problems[0].startswith(f"{MODEL}/v0001/{WEIGHTS}: modified")


def test_truncated_weights_are_reported(registry, version):
    truncate(version / WEIGHTS)
    problems = registry.verify(MODEL)
    assert len(problems) == 1
    assert problems[0].startswith(f"{MODEL}/v0001/{WEIGHTS}: truncated (1000 of ")


def test_a_missing_file_is_reported(registry, version):
    writable(version / "model" / "tokenizer.json").unlink()
    assert registry.verify(MODEL) == [f"{MODEL}/v0001/model/tokenizer.json: missing"]


def test_an_extra_file_is_reported(registry, version):
    (version / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04sneaked in")
    assert registry.verify(MODEL) == [f"{MODEL}/v0001/model/pytorch_model.bin: unexpected file (not in the manifest)"]


def test_every_problem_is_reported_at_once(registry, version):
    flip_byte(version / WEIGHTS)
    truncate(version / "model" / "config.json", keep=10)
    writable(version / "model" / "tokenizer.json").unlink()
    (version / "notes.txt").write_text("extra")
    problems = registry.verify(MODEL)
    assert [line.split(": ")[0] for line in problems] == [f"{MODEL}/v0001/model/config.json", f"{MODEL}/v0001/{WEIGHTS}",
                                                       f"{MODEL}/v0001/model/tokenizer.json", f"{MODEL}/v0001/notes.txt"]
    assert ["truncated" in problems[0], "modified" in problems[1], "missing" in problems[2], "unexpected" in problems[3]] == [True] * 4


def test_an_edited_manifest_is_reported(registry, version):
    manifest_path = writable(version / "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"]["test"]["accuracy"] = 0.99  # someone "improves" the metrics by hand
    manifest_path.write_text(json.dumps(manifest))
    assert registry.verify(MODEL) == [f"{MODEL}/v0001/manifest.json: modified (sha256 differs from manifest.sha256)"]


def test_verifying_all_versions_names_only_the_damaged_one(registry, version, make_run):
    assert registry.register(make_run()) == "v0002"
    flip_byte(registry.resolve(MODEL, "v0002") / WEIGHTS)
    problems = registry.verify(MODEL)
    assert len(problems) == 1 and problems[0].startswith(f"{MODEL}/v0002/{WEIGHTS}")


def test_verifying_an_unknown_model_is_an_error(registry, version):
    with pytest.raises(RegistryError, match="No model named 'other'"):
        registry.verify("other")


def test_an_alias_to_a_missing_version_is_reported(registry, version):
    registry.promote(MODEL, "v0001", alias="staging")
    aliases_path = registry.model_root(MODEL) / "aliases.json"
    aliases_path.write_text(json.dumps({"staging": "v0001", "canary": "v0009"}))
    assert registry.verify(MODEL) == [f"{MODEL}/aliases.json: canary points at v0009, which does not exist"]


def test_a_hand_edit_against_the_history_is_reported(registry, version):
    registry.promote(MODEL, "v0001", alias="staging")
    aliases_path = registry.model_root(MODEL) / "aliases.json"
    aliases_path.write_text(json.dumps({"staging": "v0009"}))
    assert registry.aliases(MODEL) == {"staging": "v0001"}  # the history's latest change holds
    problems = registry.verify(MODEL)
    assert len(problems) == 1 and problems[0].startswith(f"{MODEL}/aliases.json: staging is v0009 in the file, but ")


def test_load_model_gives_a_working_classifier(registry, version):
    model, tokenizer = registry.load_model(MODEL, "v0001")
    with torch.no_grad():
        logits = model(**tokenizer(["where is my parcel?", "refund me"], padding=True, return_tensors="pt")).logits
    assert logits.shape == (2, 3)
    assert model.config.id2label == {0: "cancel_order", 1: "delivery_status", 2: "refund"}


@pytest.mark.parametrize("damage", [flip_byte, truncate])
def test_load_model_refuses_damaged_weights_naming_the_file(registry, version, damage):
    damage(version / WEIGHTS)
    with pytest.raises(IntegrityError) as caught:
        registry.load_model(MODEL, "v0001")
    assert "model/model.safetensors" in caught.value.what
    assert caught.value.where == str(version / WEIGHTS)


def test_promotion_of_a_damaged_version_is_refused_even_when_forced(registry, version):
    truncate(version / WEIGHTS)
    with pytest.raises(IntegrityError, match="model/model.safetensors: truncated"):
        registry.promote(MODEL, "v0001", alias="production", force=True)
    assert registry.aliases(MODEL) == {}


def test_a_run_with_truncated_weights_is_not_registered(registry, make_run):
    run = make_run()
    os.truncate(run / "model" / "model.safetensors", 5000)
    with pytest.raises(IntegrityError, match="truncated") as caught:
        registry.register(run)
    assert caught.value.where == str(run / "model" / "model.safetensors")
    assert registry.versions(MODEL) == []
