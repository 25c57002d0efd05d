"The stage end to end on a tiny model: reports written, calibration attached to the registered version once."
import json
import shutil

import pytest

from ainative.core import ConfigError, ModelNotFoundError, RunDir, atomic_write_json
from ainative.data import DataConfig, prepare_data, read_manifest
from ainative.explain import ExplainConfig, explain_model
from ainative.registry import Registry
from ainative.demo import tiny_model

FIGURES = {"attributions", "deletion_curve", "confusion_matrix", "per_class_f1", "reliability"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    "A run with the bundled data and a tiny random classifier on its labels (never a real model)."
    run = RunDir.create(tmp_path_factory.mktemp("explain") / "run")
    prepare_data(DataConfig(run_dir=str(run.path)))
    manifest = read_manifest(run.data)
    model = tiny_model(sorted(manifest["label2id"], key=manifest["label2id"].get), vocab_size=len(tokenizer))
    model.save_pretrained(run.model)
    tokenizer.save_pretrained(run.model)
    atomic_write_json(run.reports / "metrics.json", {
        "data_version": manifest["version"], "test_sha256": manifest["split_sha256"]["test"],
        "test": {"accuracy": 0.2, "macro_f1": 0.1}})
    return run.path


def small(run_dir, **overrides):
    return ExplainConfig(run_dir=str(run_dir), sample_size=4, n_steps=4, top_k=1, max_k=2, random_repeats=2, **overrides)


def test_stage_writes_reports_for_the_runs_own_model(tiny_run, tmp_path):
    run_dir = tmp_path / "own"
    shutil.copytree(tiny_run, run_dir)
    result = explain_model(small(run_dir))
    reports = run_dir / "reports"
    assert set(result.figures) == FIGURES and all((reports / f"{name}.png").stat().st_size > 1000 for name in FIGURES)
    report = json.loads((reports / "explain.json").read_text())
    assert report["calibration_attachment"] == "no registered version: not attached"
    assert report["faithfulness"]["texts"] == 4 and report["attributions"]["n_steps"] == 4
    assert {row["family"] for row in report["behaviour"]["pass_rates"]} == {"invariance", "minimum functionality"}
    calibration = json.loads((reports / "calibration.json").read_text())
    assert calibration["fitted_on"] == "validation" and calibration["temperature"] > 0
    assert calibration["examples"] == read_manifest(run_dir / "data")["counts"]["validation"]
    assert len(json.loads((reports / "attributions.json").read_text())) == 4
    assert RunDir(run_dir).read_params()["explain"]["sample_size"] == 4


def test_stage_attaches_calibration_to_the_registered_version_once(tiny_run, tmp_path):
    run_dir = tmp_path / "registered"
    shutil.copytree(tiny_run, run_dir)
    registry = Registry(tmp_path / "registry")
    version = registry.register(run_dir)
    RunDir(run_dir).record_params("registry", {"version": version, "registry_dir": str(registry.root)})

    first = explain_model(small(run_dir))
    stored = registry.resolve("intent-classifier", version) / "calibration" / "calibration.json"
    calibration = json.loads(stored.read_text())
    assert first.report["calibration_attachment"] == f"attached to intent-classifier {version}"
    assert {"temperature", "ece_before", "ece_after", "fitted_on", "examples"} <= set(calibration)
    assert calibration["temperature"] == first.report["calibration"]["temperature"] and calibration["version"] == version
    assert registry.attachments("intent-classifier", version)["calibration"]["info"]["fitted_on"] == "validation"
    assert registry.verify("intent-classifier", version) == []

    again = explain_model(small(run_dir, n_bins=5))  # another fit must not replace what the version holds
    assert f"already has a calibration (temperature {calibration['temperature']})" in again.report["calibration_attachment"]
    assert json.loads(stored.read_text()) == calibration


def test_a_run_without_a_model_gets_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no trained model") as caught:
        explain_model(ExplainConfig(run_dir=str(tmp_path / "empty")))
    assert "training stage" in caught.value.fix


@pytest.mark.parametrize("params", [{"sample_size": 0}, {"n_steps": "0"}, {"top_k": 5, "max_k": 3}, {"sample": 3}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ConfigError):
        ExplainConfig.from_params(params)
