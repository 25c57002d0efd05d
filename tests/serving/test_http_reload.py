"""Hot reload over real HTTP: a new production version is swapped in without a restart; a damaged one is refused."""
from __future__ import annotations

import os
import signal
import time

import pytest

from ainative.core import IntegrityError
from ainative.registry import Registry
from live_server import ADMIN_TOKEN, MODEL, copy_demo, reload_counts, scrape, wait_until

RELOAD_TIMEOUT_S = 60  # verify ~115 MB, open an ONNX session, warm it up: seconds, more on a busy machine


@pytest.fixture(scope="module")
def folder(demo_folder, module_tmp_path):
    "A private copy of the demo folder: these tests register and promote versions."
    return copy_demo(demo_folder, module_tmp_path / "demo")


@pytest.fixture(scope="module")
def registry(folder) -> Registry:
    return Registry(folder / "registry")


@pytest.fixture(scope="module")
def server(start_server, folder):
    return start_server(folder / "registry", env={"AINATIVE_RELOAD_INTERVAL_S": "0.2", "AINATIVE_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture
def client(server):
    with server.client() as client:
        yield client


def served_info(client) -> list[dict]:
    "The labels of every ainative_model_info sample whose value is 1."
    return [s.labels for s in scrape(client)["ainative_model_info"] if s.value == 1]


def corrupt(path):
    "Overwrite bytes inside `path` (same size), as disk rot or a manual edit would."
    path.chmod(0o644)
    with open(path, "r+b") as file:
        file.seek(path.stat().st_size // 2)
        file.write(b"\xde\xad\xbe\xef" * 64)


def test_a_new_production_version_is_served_without_a_restart(server, client, registry, folder):
    pid = server.process.pid
    old = client.get("/model").json()["version"]
    before = reload_counts(client)
    new = registry.register(folder / "run")  # the run's onnx/ (with report.json) is stored with the new version
    assert registry.verify(MODEL, new) == [] and (registry.resolve(MODEL, new) / "onnx" / "report.json").is_file()
    registry.promote(MODEL, new, force=True)  # the same model again: 30 test texts cannot decide; this test is about the reload
    statuses = []

    def serving_new() -> bool:
        answer = client.post("/predict", json={"text": "refund please"})
        statuses.append(answer.status_code)
        return answer.status_code == 200 and answer.json()["model_version"] == new
    wait_until(serving_new, RELOAD_TIMEOUT_S, f"serving {new} after its promotion")
    assert set(statuses) == {200}  # requests kept being answered during the load and the swap
    model = client.get("/model").json()
    assert model["version"] == new and model["failed_version"] is None
    assert model["last_reload"]["ok"] is True and model["last_reload"]["version"] == new and model["last_reload"]["previous"] == old
    assert {k: v for k, v in client.get("/ready").json().items() if k not in ("components", "int8_host_check")} == {"status": "ready", "model_version": new}
    batch = client.post("/predict/batch", json={"texts": ["refund please", "cancel it"]}).json()
    assert batch["model_version"] == new and {p["model_version"] for p in batch["predictions"]} == {new}
    after = reload_counts(client)
    assert after["success"] == before["success"] + 1 and after.get("failure", 0) == before.get("failure", 0)
    assert [info["version"] for info in served_info(client)] == [new]  # the old version's info is gone
    assert server.process.pid == pid and server.process.poll() is None  # the same process: no restart


def test_a_damaged_version_is_refused_and_the_old_one_keeps_serving(server, client, registry, folder):
    model = client.get("/model").json()
    serving, variant = model["version"], model["variant"]
    before = reload_counts(client)
    damaged = registry.register(folder / "run")
    # promote() refuses a damaged version even with force=True, so the damage happens after the promotion: the server
    # is paused meanwhile, so that it first sees the alias move when the file is already damaged
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        registry.promote(MODEL, damaged, force=True)  # the same model again: 30 test texts cannot decide the gate
        corrupt(registry.resolve(MODEL, damaged) / "onnx" / variant)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert any(f"{damaged}/onnx/{variant}: modified" in problem for problem in registry.verify(MODEL, damaged))
    with pytest.raises(IntegrityError, match="failed verification"):
        registry.promote(MODEL, damaged, force=True)
    assert registry.aliases(MODEL)["production"] == damaged

    model = wait_until(lambda: (lambda m: m if m["failed_version"] == damaged else None)(client.get("/model").json()),
                       RELOAD_TIMEOUT_S, f"the server trying {damaged}")
    assert model["version"] == serving  # still the old version
    last = model["last_reload"]
    assert last["ok"] is False and last["version"] == damaged and last["still_serving"] == serving
    assert "failed verification" in last["error"] and variant in last["error"]
    for _ in range(5):
        answer = client.post("/predict", json={"text": "please cancel my order"})
        assert answer.status_code == 200 and answer.json()["model_version"] == serving
    assert {k: v for k, v in client.get("/ready").json().items() if k not in ("components", "int8_host_check")} == {"status": "ready", "model_version": serving}
    counts = reload_counts(client)
    assert counts["failure"] == before.get("failure", 0) + 1 and counts["success"] == before["success"]
    assert [info["version"] for info in served_info(client)] == [serving]

    time.sleep(1.0)  # five reload intervals: a version known to be broken is not retried on every check
    assert reload_counts(client)["failure"] == before.get("failure", 0) + 1

    refused = client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "reload_failed" and damaged in body["message"] and f"still serving {serving}" in body["message"]
    assert reload_counts(client)["failure"] == before.get("failure", 0) + 2
    assert client.post("/predict", json={"text": "refund please"}).json()["model_version"] == serving


def test_a_rollback_after_a_refused_version_keeps_serving_without_a_reload(server, client, registry):
    "Rolling the alias back to the version being served needs no load: the server just goes on."
    serving = client.get("/model").json()["version"]
    if registry.aliases(MODEL)["production"] == serving:
        pytest.skip("needs the refused version of the previous test behind the alias")
    before = reload_counts(client)
    registry.rollback(MODEL)
    assert registry.aliases(MODEL)["production"] == serving
    time.sleep(1.0)  # five reload intervals
    assert reload_counts(client) == before
    assert client.post("/predict", json={"text": "refund please"}).json()["model_version"] == serving
