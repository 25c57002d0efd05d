"""End to end: on a templated dataset `best` chooses the baseline, it is registered, promoted, and the server answers from it.

The serving engine opens the version through its family (`ModelManager.open_checked` -> `registry.version_family(...)`
-> `BaselineFamily.open_runtime`), and `/model` shows the runtime's `describe()`, whose `family` is "baseline".
"""
from __future__ import annotations


import pytest
from fastapi.testclient import TestClient

from ainative.baseline import BaselineConfig
from ainative.registry import Registry
from ainative.training import compare_run_families
from ainative.api import create_app
from ainative.serving import ServingConfig

from baseline_fixtures import MODEL, TEMPLATES, wait_ready


@pytest.fixture
def served_baseline(templated_run, tmp_path) -> tuple[Registry, str, dict]:
    "What the pipeline does under family=best on the templated run: compare, choose, register, promote."
    comparison = compare_run_families(templated_run.path, BaselineConfig(bench_seconds=0.05), family="best")
    assert comparison["chosen"] == "baseline", comparison["verdict"]
    registry = Registry(tmp_path / "registry")
    version = registry.register(templated_run.path, family="baseline", comparison=comparison)
    registry.promote(MODEL, version, "production")
    return registry, version, comparison


def test_the_server_answers_predict_from_the_chosen_baseline(served_baseline):
    registry, version, comparison = served_baseline
    assert registry.show(MODEL, version)["metrics"]["comparison"]["verdict"] == comparison["verdict"]  # the manifest says so
    config = ServingConfig(registry_dir=str(registry.root), device="cpu", reload_interval_s=0)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        wait_ready(client)
        described = client.get("/model").json()
        assert described["family"] == "baseline" and described["version"] == version
        answer = client.post("/predict", json={"text": "Where is my umbrella?"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["intent"] == "delivery_status" and body["model_version"] == version
        assert 0 < body["confidence"] <= 1 and {a["intent"] for a in body["top_k"]} <= set(TEMPLATES)
        batch = client.post("/predict/batch", json={"texts": ["please cancel the umbrella", "refund the umbrella please"]})
        assert batch.status_code == 200, batch.text
        assert [p["intent"] for p in batch.json()["predictions"]] == ["cancel_order", "refund"]
        explained = client.post("/explain", json={"text": "Where is my umbrella?"})  # the baseline has no attributions
        assert explained.status_code == 501 and explained.json()["error"] == "not_supported", explained.text
        assert "baseline family cannot explain an answer" in explained.json()["message"]
