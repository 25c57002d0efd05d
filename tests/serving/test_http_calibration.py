"""Calibration attached to the served version is picked up without a restart, and scales the confidence."""
from __future__ import annotations

import json

from ainative.registry import Registry
from live_server import MODEL, copy_demo, wait_until


def test_attached_calibration_reloads_the_served_version(start_server, demo_folder, tmp_path):
    folder = copy_demo(demo_folder, tmp_path / "demo")
    registry = Registry(folder / "registry")
    server = start_server(folder / "registry", env={"AINATIVE_RELOAD_INTERVAL_S": "0.2"})
    with server.client() as client:
        before = client.post("/predict", json={"text": "I want a refund"}).json()
        served = client.get("/model").json()
        assert served["temperature"] == 1.0
        (tmp_path / "calibration").mkdir()
        (tmp_path / "calibration" / "calibration.json").write_text(json.dumps({"temperature": 3.0}))
        registry.attach(MODEL, served["version"], "calibration", tmp_path / "calibration", info={"temperature": 3.0})
        wait_until(lambda: client.get("/model").json()["temperature"] == 3.0, 60, "the calibration to be loaded")
        after = client.post("/predict", json={"text": "I want a refund"}).json()
    server.stop()  # before pytest deletes its registry (tmp_path)
    assert after["model_version"] == before["model_version"] and after["intent"] == before["intent"]
    assert after["confidence"] < before["confidence"]  # a higher temperature spreads the probabilities
