"""The issue's proof, as a user runs it: on a templated dataset `ainative pipeline -p family=best` says the baseline is
better, registers it, promotes it, and the server answers /predict from it. The transformer is a tiny random BERT
trained for one epoch (seconds), so the baseline wins by a wide margin."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ainative.core import RunDir
from ainative.pipeline import pipeline_outcome, pipeline_summary, run_pipeline
from ainative.registry import Registry
from ainative.api import create_app
from ainative.serving import ServingConfig

from baseline_fixtures import TEMPLATES, wait_ready, write_templated_dataset


def tiny_base_model(folder):
    "A randomly initialised one-layer BERT with the bundled tokenizer, saved as a base model folder."
    from ainative.demo import tiny_model, tiny_tokenizer
    tokenizer = tiny_tokenizer()
    tiny_model(sorted(TEMPLATES), vocab_size=len(tokenizer), layers=1, hidden_size=32, intermediate_size=64, max_positions=64,
               seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def best_run(module_tmp_path) -> tuple[RunDir, Registry]:
    dataset = write_templated_dataset(module_tmp_path / "templated.csv")
    registry_dir = module_tmp_path / "registry"
    run = run_pipeline("smoke", {"dataset": str(dataset), "base_model": str(tiny_base_model(module_tmp_path / "base")),
                                 "epochs": 1.0, "max_length": 32, "family": "best", "registry_dir": str(registry_dir)},
                       run_dir=module_tmp_path / "run")
    return run, Registry(registry_dir)


def test_best_registers_the_baseline_and_every_summary_says_why(best_run):
    run, registry = best_run
    metrics = json.loads((run.reports / "metrics.json").read_text())
    families = metrics["families"]
    assert families["verdict"].startswith("the baseline is better than the transformer"), families
    assert families["accuracy"]["validation"]["baseline"] > families["accuracy"]["validation"]["transformer"]
    outcome = pipeline_outcome(run)
    assert outcome["family"] == "baseline" and "production" in outcome["aliases"]
    manifest = registry.show(outcome["model"], outcome["version"])
    assert manifest["family"] == "baseline" and manifest["metrics"]["comparison"]["verdict"] == families["verdict"]
    summary = pipeline_summary(run)
    assert f"families: {families['verdict']}" in summary and f"{outcome['version']} (baseline) -> alias production" in summary
    assert "serving cost at batch 32: onnx " in summary and "baseline onnx" in summary.split("serving cost at batch 32: ")[1]
    report = json.loads((run.onnx / "report.json").read_text())  # the optimisation benchmark measured both families
    assert "baseline onnx" in report["throughput_at_32"]["by length"] and report["test_accuracy"]["baseline onnx"] >= 0.9
    assert "onnx" not in registry.attachments(outcome["model"], outcome["version"])  # its own export serves, nothing attached


def test_the_server_answers_from_the_registered_baseline(best_run):
    run, registry = best_run
    config = ServingConfig(registry_dir=str(registry.root), model=pipeline_outcome(run)["model"], device="cpu",
                           reload_interval_s=0)
    with TestClient(create_app(config)) as client:
        wait_ready(client)
        assert client.get("/model").json()["family"] == "baseline"
        answer = client.post("/predict", json={"text": "please cancel the umbrella"}).json()
    assert answer["intent"] == "cancel_order" and {a["intent"] for a in answer["top_k"]} <= set(TEMPLATES)
