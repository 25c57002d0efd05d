"""Attachments (onnx/, calibration/ added after registration) are recorded by their version, so verify sees them vanish."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ainative.core import IntegrityError, atomic_write_json, atomic_write_text, sha256_file
from ainative.registry import ATTACHMENT_FILES, file_inventory

MODEL = "intent-classifier"

ATTACH_PAUSED = """
import os, sys, time
from pathlib import Path
from ainative.registry import Registry
root, source, ready, when = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
real_rename = os.rename
def rename(source_path, target_path):
    if Path(target_path).name != "onnx": return real_rename(source_path, target_path)
    if when == "after the rename": real_rename(source_path, target_path)
    ready.touch()
    time.sleep(600)  # killed here
os.rename = rename
Registry(root).attach("intent-classifier", "v0001", "onnx", source, info={"opset": 17})
"""


def export_folder(tmp_path: Path) -> Path:
    "A folder of derived files, as the optimisation stage makes."
    folder = tmp_path / "exports"
    folder.mkdir(exist_ok=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    (folder / "report.json").write_text(json.dumps({"serving_default": {"cpu": "model.onnx"}}))
    return folder


@pytest.fixture
def version(registry, make_run, tmp_path) -> Path:
    "v0001 with two attachments: onnx/ and calibration/."
    assert registry.register(make_run()) == "v0001"
    registry.attach(MODEL, "v0001", "onnx", export_folder(tmp_path), info={"opset": 17})
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "calibration.json").write_text(json.dumps({"temperature": 1.5}))
    registry.attach(MODEL, "v0001", "calibration", calibration, info={"temperature": 1.5})
    return registry.resolve(MODEL, "v0001")


def test_untouched_attachments_verify(registry, version):
    assert set(registry.attachments(MODEL, "v0001")) == {"onnx", "calibration"}
    assert registry.verify(MODEL) == []


def test_a_deleted_attachment_folder_is_reported(registry, version):
    shutil.rmtree(version / "onnx")
    problems = registry.verify(MODEL)
    assert len(problems) == 1 and problems[0].startswith(f"{MODEL}/v0001/onnx/: missing"), problems
    with pytest.raises(IntegrityError, match="onnx/: missing"):
        registry.promote(MODEL, "v0001", force=True)  # never served without the files it was given


def test_a_deleted_attachment_json_is_reported(registry, version):
    (version / "onnx" / ATTACHMENT_FILES[0]).unlink()
    (version / "onnx" / ATTACHMENT_FILES[1]).unlink()
    problems = registry.verify(MODEL)
    assert f"{MODEL}/v0001/onnx/attachment.json: missing" in [p.split(" (")[0] for p in problems], problems


def forge(folder: Path) -> None:
    "Swap an attachment's files for others and rewrite its attachment.json and .sha256 to match: self-consistent."
    for path in folder.iterdir(): path.chmod(0o644)
    (folder / "model.onnx").unlink()
    (folder / "other.onnx").write_bytes(b"someone else's model")
    record = json.loads((folder / ATTACHMENT_FILES[0]).read_text())
    record["files"] = {relative: entry for relative, entry in file_inventory(folder).items() if relative not in ATTACHMENT_FILES}
    atomic_write_json(folder / ATTACHMENT_FILES[0], record)
    atomic_write_text(folder / ATTACHMENT_FILES[1], sha256_file(folder / ATTACHMENT_FILES[0]) + "\n")


def test_a_forged_attachment_record_is_reported(registry, version):
    forge(version / "onnx")
    assert registry.verify(MODEL) == [
        f"{MODEL}/v0001/onnx/attachment.json: replaced (its sha256 differs from the one recorded in attachments.jsonl)"]


def test_an_attachment_folder_nobody_attached_is_reported(registry, version, tmp_path):
    shutil.copytree(version / "onnx", version / "extra")  # self-consistent, but never attached
    assert registry.verify(MODEL) == [f"{MODEL}/v0001/extra/: unexpected attachment (not recorded in attachments.jsonl)"]


def make_legacy(version: Path) -> None:
    "Make `version` look registered and attached before versions recorded their attachments."
    (version / "attachments.jsonl").unlink()
    manifest_path = version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("attachment_record")
    manifest["format"] = 1
    for path in (manifest_path, version / "manifest.sha256"): path.chmod(0o644)
    atomic_write_json(manifest_path, manifest)
    atomic_write_text(version / "manifest.sha256", sha256_file(manifest_path) + "\n")


def test_a_version_from_before_the_record_still_verifies_and_is_adopted_by_the_next_attach(registry, version, tmp_path):
    make_legacy(version)
    assert registry.verify(MODEL) == []  # the old check: each attachment against its own attachment.json
    explanations = tmp_path / "explanations"
    explanations.mkdir()
    (explanations / "report.json").write_text("{}")
    registry.attach(MODEL, "v0001", "explanations", explanations)  # records the earlier attachments too
    assert registry.verify(MODEL) == []
    shutil.rmtree(version / "calibration")
    assert [p.split(": ")[0] for p in registry.verify(MODEL)] == [f"{MODEL}/v0001/calibration/"]


def test_a_new_version_without_its_record_file_reports_its_attachments(registry, version):
    (version / "attachments.jsonl").unlink()  # the manifest says the record exists: deleting it hides nothing
    assert sorted(p.split(": ")[0] for p in registry.verify(MODEL)) == [f"{MODEL}/v0001/calibration/", f"{MODEL}/v0001/onnx/"]


@pytest.mark.parametrize("when", ["before the rename", "after the rename"])
def test_an_attach_killed_midway_leaves_a_version_that_verifies(when, registry, registry_root, make_run, tmp_path,
                                                                start_python, kill_when_ready):
    assert registry.register(make_run()) == "v0001"
    ready = tmp_path / "ready"
    kill_when_ready(start_python(ATTACH_PAUSED, registry_root, export_folder(tmp_path), ready, when), ready)
    folder = registry.resolve(MODEL, "v0001")
    assert (folder / "onnx").exists() == (when == "after the rename")
    assert registry.verify(MODEL) == []  # either attached whole, or not at all: the version stays servable
    registry.gc(MODEL)  # removes the temp folder, and finishes the record of an attach that got past its rename
    assert not list(registry.model_root(MODEL).glob(".tmp-*"))
    if when == "before the rename":
        registry.attach(MODEL, "v0001", "onnx", export_folder(tmp_path))  # may be attached again
        assert registry.verify(MODEL) == []
    shutil.rmtree(folder / "onnx")
    assert [p.split(": ")[0] for p in registry.verify(MODEL)] == [f"{MODEL}/v0001/onnx/"]


def test_an_attachment_may_hold_its_own_manifest_json_and_it_is_guarded_like_any_file(registry, make_run, tmp_path):
    "A dataset attached as it was written (splits + manifest.json) verifies; changing its manifest.json is reported."
    assert registry.register(make_run()) == "v0001"
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps({"version": "data-1"}))
    (dataset / "train.parquet").write_bytes(b"rows")
    registry.attach(MODEL, "v0001", "dataset", dataset)
    assert registry.verify(MODEL) == []
    stored = registry.resolve(MODEL, "v0001") / "dataset" / "manifest.json"
    stored.chmod(0o644)
    stored.write_text(json.dumps({"version": "data-2"}))
    problems = registry.verify(MODEL)
    assert any("dataset/manifest.json" in problem and ("size changed" in problem or "modified" in problem)
               for problem in problems), problems
