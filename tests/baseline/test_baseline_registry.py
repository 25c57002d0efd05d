"""A baseline is a version like any other: manifest, gate, aliases, verify, describe; and the no-pickle rule holds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ainative.baseline import BASELINE, BaselineRuntime
from ainative.core import IntegrityError, ModelNotFoundError, RegistryError, sha256_file
from ainative.families import family_of, find_pickle_files
from ainative.registry import BUILTIN_FAMILY_MODULES, Registry
from ainative.serving import open_version
from ainative.transformer import TRANSFORMER

from baseline_fixtures import MODEL


def test_the_manifest_says_family_baseline_with_what_a_version_records(baseline_version, templated_run):
    registry, version = baseline_version
    manifest = registry.show(MODEL, version)
    data = json.loads((templated_run.data / "manifest.json").read_text())
    assert (manifest["family"], manifest["family_module"], manifest["task"]) == ("baseline", "ainative.baseline", "intent")
    assert registry.version_family(MODEL, version) is BASELINE
    assert manifest["data_version"] == data["version"] and manifest["test_sha256"] == data["split_sha256"]["test"]
    assert manifest["metrics"]["test"]["accuracy"] >= 0.95 and "macro_f1" in manifest["metrics"]["test"]
    assert manifest["metrics"]["calibration"]["temperature"] > 0
    assert manifest["labels"]["label2id"] == data["label2id"]
    assert {"onnx/model.onnx", "onnx/report.json", "calibration/calibration.json", "model/config.json", "README.md"} <= set(manifest["files"])
    report = json.loads((registry.resolve(MODEL, version) / "onnx" / "report.json").read_text())
    assert report["serving_default"]["cpu"] in report["files"].values()
    assert registry.verify(MODEL) == []
    card = (registry.resolve(MODEL, version) / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: onnx\npipeline_tag: text-classification\nbase_model: none (tfidf-")


def test_a_transformer_version_is_of_the_transformer_family():
    assert family_of({"name": "x"}, BUILTIN_FAMILY_MODULES) is TRANSFORMER  # a version from before families were recorded
    assert family_of({"family": "transformer"}, BUILTIN_FAMILY_MODULES) is TRANSFORMER
    assert family_of({"family": "baseline"}, BUILTIN_FAMILY_MODULES) is BASELINE


def _as_written_by_register_baseline(registry: Registry, version: str) -> dict:
    "Rewrite `version`'s manifest as the previous code's `register_baseline` wrote it: `family: baseline`, no module, no task."
    folder = registry.resolve(MODEL, version)
    manifest = registry.show(MODEL, version)
    old = {key: value for key, value in manifest.items() if key not in ("family_module", "task")}
    for name in ("manifest.json", "manifest.sha256"): (folder / name).chmod(0o644)
    (folder / "manifest.json").write_text(json.dumps(old))
    (folder / "manifest.sha256").write_text(sha256_file(folder / "manifest.json") + "\n")
    return old


def test_a_baseline_registered_by_the_previous_code_still_opens_and_serves(baseline_version):
    registry, version = baseline_version
    old = _as_written_by_register_baseline(registry, version)
    assert old["family"] == "baseline" and "family_module" not in old and registry.verify(MODEL) == []
    assert registry.version_family(MODEL, version) is BASELINE  # the registry knows where the built-in families live
    runtime = open_version(registry, MODEL, version)
    assert isinstance(runtime, BaselineRuntime) and runtime.describe()["task"] == "intent"
    assert runtime.labels[int(runtime.predict(["where is my umbrella"])[0][0].argmax())] == "delivery_status"
    registry.promote(MODEL, version, "production")
    assert registry.aliases(MODEL) == {"production": version}


def test_no_pickle_in_a_baseline_version_and_a_pickle_in_the_run_is_refused(baseline_version, templated_run, tmp_path):
    registry, version = baseline_version
    assert find_pickle_files(registry.resolve(MODEL, version)) == []
    pickled = templated_run.path / "baseline" / "model" / "classifier.joblib"
    pickled.write_bytes(b"\x80\x04K\x01.")  # a pickle: loading it could run code
    try:
        with pytest.raises(RegistryError, match="pickle"):
            registry.register(templated_run.path, family="baseline")
    finally:
        pickled.unlink()
    assert registry.versions(MODEL) == [version]  # nothing registered, nothing left half-done
    assert not [p for p in registry.model_root(MODEL).iterdir() if p.name.startswith(".tmp-")]


def test_a_run_without_data_is_refused_clearly(tmp_path):
    "The family exports a run's baseline when it has none; without data it cannot, and says so."
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelNotFoundError, match="no data/manifest.json") as error:
        Registry(tmp_path / "registry").register(tmp_path / "run", family="baseline")
    assert "data stage" in error.value.fix


def test_staging_without_an_exported_baseline_is_refused_clearly(tmp_path):
    from ainative.core import RunDir
    with pytest.raises(ModelNotFoundError, match="no exported baseline") as error:
        BASELINE.stage(RunDir(tmp_path), tmp_path / "staging")
    assert "export_baseline" in error.value.fix


def test_a_damaged_baseline_version_fails_verify(baseline_version):
    registry, version = baseline_version
    onnx = registry.resolve(MODEL, version) / "onnx" / "model.onnx"
    onnx.chmod(0o644)
    with open(onnx, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    problems = registry.verify(MODEL, version)
    assert any("onnx/model.onnx" in p for p in problems), problems
    with pytest.raises(IntegrityError):
        registry.promote(MODEL, version, "production")


def _transformer_version(registry: Registry, folder: Path, test_sha256: str, accuracy: float) -> str:
    from ainative.demo import make_demo_run
    run = make_demo_run(folder, accuracy=accuracy, macro_f1=accuracy, test_sha256=test_sha256)
    return registry.register(run.path, MODEL)


def test_the_gate_compares_families_on_the_same_test_set(baseline_version, tmp_path):
    registry, baseline = baseline_version
    test_sha256 = registry.show(MODEL, baseline)["test_sha256"]
    weak = _transformer_version(registry, tmp_path / "weak", test_sha256, accuracy=0.30)
    registry.promote(MODEL, weak, "production")
    registry.promote(MODEL, baseline, "production")  # better on the same test set: the gate lets it through
    assert registry.aliases(MODEL)["production"] == baseline
    with pytest.raises(RegistryError, match="below production"):  # and a weak transformer cannot replace it
        registry.promote(MODEL, _transformer_version(registry, tmp_path / "weak2", test_sha256, accuracy=0.30), "production")
    assert registry.aliases(MODEL)["production"] == baseline
    registry.rollback(MODEL, "production")
    assert registry.aliases(MODEL)["production"] == weak


def test_the_registry_command_line_describes_and_verifies_a_baseline(baseline_version):
    registry, version = baseline_version
    ainative = str(Path(sys.executable).parent / "ainative")
    env = {**os.environ, "AINATIVE_REGISTRY_DIR": str(registry.root)}
    described = subprocess.run([ainative, "registry", "describe", version, "TF-IDF baseline, chosen on validation"],
                               capture_output=True, text=True, env=env, timeout=120)
    assert described.returncode == 0, described.stderr
    assert registry.notes(MODEL)[version]["description"] == "TF-IDF baseline, chosen on validation"
    verified = subprocess.run([ainative, "registry", "verify"], capture_output=True, text=True, env=env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
