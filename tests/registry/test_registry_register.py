"""Registration: safetensors only, and a manifest that records everything needed to trust a version."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ainative.core import ConfigError, ModelNotFoundError, RegistryError, sha256_file
from ainative.registry import Registry, RegistryConfig, latest_trained_run, register_model

MODEL = "intent-classifier"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("file_name, content", [
    ("pytorch_model.bin", b"\x80\x02weights"),
    ("model.pt", b"PK\x03\x04torch zip"),
    ("weights.pth", b"anything"),
    ("state.pkl", b"anything"),
    ("last.ckpt", b"anything"),
    ("extra_weights", pickle.dumps({"w": [1.0, 2.0]})),  # no telling name: caught by its first bytes
])
def test_pickle_weights_are_refused(registry, make_run, file_name, content):
    run = make_run()
    (run / "model" / file_name).write_bytes(content)
    with pytest.raises(RegistryError) as caught:
        registry.register(run)
    assert file_name in caught.value.what and "safetensors only" in caught.value.what
    assert caught.value.where == str(run / "model" / file_name)
    assert registry.versions(MODEL) == []
    assert not list(registry.root.glob("*/.tmp-*"))


def test_the_trainers_training_args_are_left_out(registry, make_run):
    run = make_run()
    (run / "model" / "training_args.bin").write_bytes(pickle.dumps({"learning_rate": 5e-5}))
    version = registry.register(run)
    assert registry.show(MODEL, version)["left_out"] == ["model/training_args.bin"]
    assert not (registry.resolve(MODEL, version) / "model" / "training_args.bin").exists()
    assert registry.verify(MODEL) == []


def test_the_manifest_records_everything(registry, make_run):
    run = make_run(accuracy=0.91, macro_f1=0.87)
    metrics = json.loads((run / "reports" / "metrics.json").read_text())
    params = json.loads((run / "params.json").read_text())
    version = registry.register(run)
    folder = registry.resolve(MODEL, version)
    manifest = registry.show(MODEL, "v0001")
    assert manifest["version"] == version == "v0001" and manifest["name"] == MODEL
    assert manifest["metrics"] == metrics  # every key, as training wrote it
    assert manifest["params"] == params
    assert manifest["data_version"] == metrics["data_version"] == "data-demo0000"
    assert manifest["test_sha256"] == metrics["test_sha256"]
    assert manifest["labels"]["label2id"] == {"cancel_order": 0, "delivery_status": 1, "refund": 2}
    assert manifest["parent"] is None
    assert manifest["run"] == {"id": run.name, "path": str(run)}
    created = datetime.fromisoformat(manifest["created"])
    assert created.utcoffset().total_seconds() == 0 and abs((datetime.now(timezone.utc) - created).total_seconds()) < 600
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert manifest["code"]["commit"] == head.stdout.strip() and isinstance(manifest["code"]["dirty"], bool)
    else:
        assert manifest["code"] is None
    stored = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == set(stored) - {"manifest.json", "manifest.sha256"}
    assert {"model/config.json", "model/model.safetensors", "model/tokenizer.json"} <= set(manifest["files"])
    for relative, recorded in manifest["files"].items():
        assert recorded == {"sha256": sha256_file(stored[relative]), "size": stored[relative].stat().st_size}
    assert (folder / "manifest.sha256").read_text().strip() == sha256_file(folder / "manifest.json")


def test_the_onnx_folder_is_copied_when_present(registry, make_run):
    run = make_run()
    (run / "onnx").mkdir()
    (run / "onnx" / "model.onnx").write_bytes(b"onnx bytes")
    (run / "onnx" / "model.int8.onnx").write_bytes(b"int8 bytes")
    version = registry.register(run)
    assert (registry.resolve(MODEL, version) / "onnx" / "model.int8.onnx").read_bytes() == b"int8 bytes"
    assert set(registry.show(MODEL, version)["files"]) >= {"onnx/model.onnx", "onnx/model.int8.onnx"}


def test_parent_is_given_or_the_production_version(registry, make_run):
    run = make_run()
    registry.register(run)
    registry.promote(MODEL, "v0001")
    registry.register(run)
    assert registry.show(MODEL, "v0002")["parent"] == "v0001"
    registry.register(run, parent="v0002")
    assert registry.show(MODEL, "v0003")["parent"] == "v0002"
    with pytest.raises(RegistryError, match="no version v0042"):
        registry.register(run, parent="v0042")


@pytest.mark.parametrize("break_run, message", [
    (lambda run: (run / "reports" / "metrics.json").unlink(), "no reports/metrics.json"),
    (lambda run: (run / "model" / "config.json").unlink(), "config.json is missing"),
    (lambda run: (run / "model" / "model.safetensors").unlink(), r"No \*.safetensors weights"),
    (lambda run: _edit_json(run / "data" / "manifest.json", split_sha256={"test": "f" * 64}), "disagree on the test set"),
    (lambda run: _edit_json(run / "data" / "manifest.json", label2id={"a": 0, "b": 1, "c": 2}), "differ from the data's"),
    (lambda run: _edit_json(run / "reports" / "metrics.json", test={"accuracy": 0.9}), "no test"),
])
def test_an_incomplete_run_is_refused_with_a_clear_error(registry, make_run, break_run, message):
    run = make_run()
    break_run(run)
    with pytest.raises(RegistryError, match=message) as caught:
        registry.register(run)
    assert caught.value.fix
    assert registry.versions(MODEL) == []


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_names_and_versions_are_checked(registry, make_run):
    with pytest.raises(ConfigError):
        registry.register(make_run(), name="../escape")
    registry.register(make_run())
    with pytest.raises(RegistryError, match="no version or alias 'production'"):
        registry.resolve(MODEL, "production")
    with pytest.raises(RegistryError, match="No model named 'other'"):
        registry.show("other", "v0001")
    assert registry.resolve(MODEL, 1) == registry.resolve(MODEL, "v0001") == registry.root / MODEL / "v0001"


def test_the_default_root_comes_from_the_environment(registry_root):
    assert Registry().root == registry_root.resolve()


def test_the_stage_registers_the_newest_trained_run_and_promotes_it(registry, make_run, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("AINATIVE_RUNS_DIR", str(runs))
    with pytest.raises(ModelNotFoundError):
        register_model(RegistryConfig())
    older, newer = make_run(), make_run()
    older.rename(runs / "older")
    newer.rename(runs / "newer")
    os.utime(runs / "newer" / "reports" / "metrics.json", (1_000_000_000, 1_000_000_000))
    os.utime(runs / "older" / "reports" / "metrics.json", (1_000_000_100, 1_000_000_100))  # trained last
    assert latest_trained_run() == runs / "older"
    registered = register_model(RegistryConfig.from_params({"promote_to": "staging"}))
    assert registered.version == "v0001" and registered.run.path == runs / "older"
    assert registry.aliases(MODEL) == {"staging": "v0001"}
    assert registry.show(MODEL, "staging")["params"]["registry"]["promote_to"] == "staging"
