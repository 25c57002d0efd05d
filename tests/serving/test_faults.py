"""Fault injection: the server never lies about its health, never mixes models, and bounds the work of every client.

Each test reproduces a defect of issue 10 (it failed on the code before the fix) and checks the behaviour after it.
In-process tests (Starlette's TestClient) inject faults into the app's parts; the others drive `ainative serve` on
loopback and damage the registry or misbehave as clients.
"""
from __future__ import annotations

import asyncio
import copy
import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ainative.core import IntegrityError
from ainative.registry import Registry
from ainative.api import create_app
from ainative.families import RuntimeOptions
from ainative.serving import Inference, MicroBatcher, ModelManager, ServingConfig, open_version
from ainative.transformer import TransformerRuntime
from live_server import HOST, MODEL, copy_demo, wait_until

RELOAD_TIMEOUT_S = 60


def app_client(registry_dir: Path, **settings) -> TestClient:
    "An in-process client of an app on `registry_dir` (enter it with `with`)."
    config = ServingConfig(registry_dir=str(registry_dir), device="cpu", **{"reload_interval_s": 0.1, "request_timeout_s": 2, **settings})
    return TestClient(create_app(config), raise_server_exceptions=False)


def wait_ready(client: TestClient, timeout: float = 60) -> dict:
    return wait_until(lambda: (lambda r: r.json() if r.status_code == 200 else None)(client.get("/ready")), timeout, "/ready 200")


# --- the batch worker ----------------------------------------------------------------------------------------------
class BlockingRuntime:
    "A runtime whose batches fail, and whose single texts wait until released (to let a caller give up meanwhile)."
    version, labels = "v-fake", ["a", "b"]

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def infer(self, texts):
        if len(texts) > 1: raise RuntimeError("this batch fails")
        self.started.set()
        self.release.wait(10)
        return Inference(np.array([[0.9, 0.1]]), [False], None, [None])


def test_a_caller_giving_up_during_the_one_by_one_fallback_does_not_kill_the_worker():
    async def scenario():
        model = BlockingRuntime()
        batcher = MicroBatcher(lambda: model, max_wait_ms=50).start()
        impatient = asyncio.ensure_future(batcher.submit(["first"]))
        patient = asyncio.ensure_future(batcher.submit(["second"]))
        await asyncio.get_running_loop().run_in_executor(None, model.started.wait, 10)
        impatient.cancel()  # its request timed out while its text ran alone on the model
        model.release.set()
        patient_result = await asyncio.wait_for(patient, 10)
        later = await asyncio.wait_for(batcher.submit(["later"]), 10)  # before the fix: never answered
        alive = batcher.alive
        await batcher.drain()
        return patient_result, later, alive
    patient, later, alive = asyncio.run(scenario())
    assert alive and patient[0].version == later[0].version == "v-fake"


def test_the_model_raising_fails_only_those_requests_and_the_server_stays_ready(demo_registry_dir, monkeypatch):
    with app_client(demo_registry_dir) as client:
        wait_ready(client)
        runtime = client.app.state.parts.answering.manager.runtime
        monkeypatch.setattr(runtime, "infer", lambda texts: (_ for _ in ()).throw(RuntimeError("CUDA error: device lost")))
        failed = client.post("/predict", json={"text": "refund please"})
        assert failed.status_code == 500 and failed.json()["error"] == "internal_error"
        assert client.get("/ready").status_code == 200  # the worker lives on; the model itself may recover
        monkeypatch.undo()
        assert client.post("/predict", json={"text": "refund please"}).status_code == 200


def test_ready_and_health_fail_when_the_batch_worker_cannot_be_restarted(demo_registry_dir):
    with app_client(demo_registry_dir) as client:
        wait_ready(client)
        batcher = client.app.state.parts.answering.batcher

        async def break_worker():
            async def crash(): raise RuntimeError("worker broke")
            batcher.worker.run, batcher.worker.max_restarts = crash, 2
            batcher.queue.put_nowait("not a queued text")  # the running loop crashes; each restart now crashes at once
            await asyncio.sleep(1.0)
        client.portal.call(break_worker)
        ready, health = client.get("/ready"), client.get("/health")
        assert ready.status_code == 503 and ready.json()["reasons"] == ["the batch worker is failed (RuntimeError: worker broke)"]
        assert health.status_code == 503 and health.json()["components"]["batch_worker"]["restarts"] == 2
        refused = client.post("/predict", json={"text": "refund please"})
        assert refused.status_code == 503 and refused.json()["error"] == "not_ready"  # at once, not after a timeout
        metrics = client.get("/metrics").text
        assert 'ainative_component_up{component="batch_worker"} 0.0' in metrics
        assert 'ainative_component_restarts{component="batch_worker"} 2.0' in metrics


def test_probes_and_predictions_do_not_queue_behind_a_full_thread_pool(demo_registry_dir):
    "Sync work (a static file's reads, a sync endpoint) can take every worker thread of anyio's pool; /health, /ready and /predict must not wait for one."
    import anyio.to_thread
    release = threading.Event()
    with app_client(demo_registry_dir) as client, ThreadPoolExecutor(max_workers=1) as caller:
        wait_ready(client)

        async def fill_pool() -> int:
            limiter = anyio.to_thread.current_default_thread_limiter()
            client.app.state.blockers = [asyncio.ensure_future(anyio.to_thread.run_sync(release.wait)) for _ in range(int(limiter.total_tokens))]
            await asyncio.sleep(0.5)
            return limiter.available_tokens
        try:
            assert client.portal.call(fill_pool) == 0  # every worker thread is busy
            for method, path, body in (("GET", "/health", None), ("GET", "/ready", None), ("POST", "/predict", {"text": "refund please"})):
                answer = caller.submit(client.request, method, path, json=body).result(timeout=10)  # before: waited for a free thread
                assert answer.status_code == 200, (path, answer.text)
        finally:
            release.set()


def test_a_slow_drift_evaluation_of_an_older_window_never_overwrites_a_newer_one(demo_registry_dir, monkeypatch):
    "The periodic evaluation and GET /monitor run at once; gauges must end with the evaluation that read the window last."
    import ainative.traffic as traffic
    calls, older_may_finish = [], threading.Event()

    def slow_first_report(reference, rows, config):
        calls.append(len(calls) + 1)
        call = calls[-1]
        if call == 1: older_may_finish.wait(10)  # the older window's evaluation is still computing ...
        return {"status": "ok", "scores": {"embedding_auc": {"status": "ok", "value": float(call)}}}
    monkeypatch.setattr(traffic, "drift_report", slow_first_report)
    with app_client(demo_registry_dir, drift_interval_s=0) as client:
        wait_ready(client)
        monitoring = client.app.state.parts.monitoring
        monkeypatch.setattr(monitoring.answering.manager.runtime, "reference", {"stand-in": True})

        async def older_then_newer():
            older = asyncio.ensure_future(traffic.evaluate_monitoring(monitoring))
            await asyncio.sleep(0.3)
            newer = asyncio.ensure_future(traffic.evaluate_monitoring(monitoring))  # ... when a newer one starts
            await asyncio.sleep(0.3)
            older_may_finish.set()
            await asyncio.gather(older, newer)
        client.portal.call(older_then_newer)
        assert calls == [1, 2]
        scores = [line for line in client.get("/metrics").text.splitlines() if line.startswith("ainative_drift_score{")]
        assert scores == ['ainative_drift_score{score="embedding_auc"} 2.0'], scores  # before: 1.0, the older window


# --- loading and reloading -----------------------------------------------------------------------------------------
def test_a_first_load_that_fails_transiently_is_retried_until_ready(demo_registry_dir, monkeypatch):
    real_open, failures = ModelManager.open_checked, ["disk hiccup"]
    def open_failing_once(self, version):
        if failures: raise OSError(f"I/O error: {failures.pop()}")
        return real_open(self, version)
    monkeypatch.setattr(ModelManager, "open_checked", open_failing_once)
    with app_client(demo_registry_dir, reload_interval_s=0) as client:  # reloads off: the retry must happen anyway
        not_ready = wait_until(lambda: (lambda r: r if r.status_code == 503 and "disk hiccup" in r.text else None)(client.get("/ready")),
                               30, "/ready naming the failed load")
        assert "no model loaded yet: OSError: I/O error: disk hiccup" in not_ready.json()["reasons"]
        assert wait_ready(client)["model_version"] == Registry(demo_registry_dir).aliases(MODEL)["production"]


def test_an_unknown_model_is_not_ready_and_ready_names_what_the_registry_holds(demo_registry_dir):
    "Issue 31: `--model intent-classifier` on a registry that holds another model must say which one and how to pick it."
    with app_client(demo_registry_dir, model="no-such-model", reload_interval_s=0) as client:
        reasons = wait_until(lambda: (lambda r: r.json()["reasons"] if r.status_code == 503 and "No alias" in " ".join(r.json()["reasons"])
                                      else None)(client.get("/ready")), 30, "/ready naming the missing model")  # not "(loading)": the first load fails soon after
        held = f"{MODEL} (production {Registry(demo_registry_dir).aliases(MODEL)['production']}"
        assert any("No alias 'production' for no-such-model" in reason and held in reason and f"--model {MODEL}" in reason
                   for reason in reasons), reasons
        assert held in json.dumps(client.get("/model").json())
        assert client.post("/predict", json={"text": "refund please"}).status_code == 503


def test_with_no_model_named_the_registrys_only_model_is_served(demo_registry_dir, tmp_path):
    "Right after `make run` the registry holds only the smoke model: `ainative serve` without --model serves it."
    single = tmp_path / "registry"
    shutil.copytree(demo_registry_dir / MODEL, single / "intent-classifier-smoke")
    with app_client(single, reload_interval_s=0) as client:
        assert wait_ready(client)["model_version"] == Registry(single).aliases("intent-classifier-smoke")["production"]
        assert client.get("/model").json()["name"] == "intent-classifier-smoke"


def test_an_integrity_failure_is_not_retried_until_the_files_change(demo_registry_dir, monkeypatch):
    attempts = []
    def open_damaged(self, version):
        attempts.append(version)
        raise IntegrityError("model.onnx: sha256 mismatch")
    monkeypatch.setattr(ModelManager, "open_checked", open_damaged)
    with app_client(demo_registry_dir, retry_max_s=0.1) as client:
        wait_until(lambda: attempts, 30, "a first load attempt")
        time.sleep(1.5)  # fifteen checks
        assert len(attempts) == 1
        assert client.get("/ready").status_code == 503


def test_results_carry_the_labels_of_the_version_that_computed_them(demo_registry_dir):
    with app_client(demo_registry_dir, reload_interval_s=0) as client:
        wait_ready(client)
        manager = client.app.state.parts.answering.manager
        old = manager.runtime
        computing, release = threading.Event(), threading.Event()
        real_infer = old.infer
        def slow_infer(texts):
            result = real_infer(texts)
            computing.set()
            release.wait(10)
            return result
        old.infer = slow_infer
        new = copy.copy(old)
        new.version, new.labels, new.infer = "v9999", [f"renamed_{label}" for label in old.labels], real_infer
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, "/predict", json={"text": "refund please"})
            assert computing.wait(10)
            manager.runtime = new  # a reload swaps the runtime after the batch ran, before the answer is built
            release.set()
            answer = pending.result(10).json()
        assert answer["model_version"] == old.version and answer["intent"] in old.labels
        assert all(alternative["intent"] in old.labels for alternative in answer["top_k"])


@pytest.mark.parametrize("damage, message", [
    ({"temperature": float("nan")}, "not a finite positive number"),
    ({"temperature": -2.0}, "not a finite positive number"),
])
def test_a_calibration_that_is_not_finite_and_positive_is_refused(demo_folder, tmp_path, damage, message):
    folder = copy_demo(demo_folder, tmp_path / "demo")
    registry = Registry(folder / "registry")
    version = registry.aliases(MODEL)["production"]
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "calibration.json").write_text(json.dumps(damage))  # json writes NaN, as Python's json reads it
    registry.attach(MODEL, version, "calibration", calibration)
    with pytest.raises(IntegrityError, match=message):
        open_version(registry, MODEL, version, RuntimeOptions(device="cpu"))


@pytest.mark.parametrize("variant", ["../model/model.safetensors", "model.onnx.bak", "report.json"])
def test_a_variant_the_report_does_not_list_is_refused(demo_registry_dir, variant):
    with pytest.raises(Exception, match="variant|path"):
        open_version(Registry(demo_registry_dir), MODEL, "production", RuntimeOptions(variant=variant, device="cpu"))


def test_a_warm_up_with_non_finite_probabilities_is_refused(demo_registry_dir, monkeypatch):
    monkeypatch.setattr(TransformerRuntime, "predict", lambda self, texts: (np.full((len(texts), 3), np.nan), [False] * len(texts)))
    manager = ModelManager(ServingConfig(registry_dir=str(demo_registry_dir), device="cpu"))
    result = manager.load()
    assert not result["ok"] and "non-finite" in result["error"] and manager.runtime is None and manager.failure.sticky


def test_a_huge_text_reaches_the_tokenizer_capped(demo_registry_dir):
    runtime = open_version(Registry(demo_registry_dir), MODEL, "production", RuntimeOptions(device="cpu", max_text_chars=500))
    seen = []
    real_encode = runtime.tokenizer.encode_batch
    class Spy:
        def __getattr__(self, name): return getattr(runtime.tokenizer_real, name)
        def encode_batch(self, texts):
            seen.extend(len(t) for t in texts)
            return real_encode(texts)
    runtime.tokenizer_real, runtime.tokenizer = runtime.tokenizer, Spy()
    probabilities, truncated = runtime.predict(["refund " * 30_000, "where is my parcel?"])
    assert seen == [500, len("where is my parcel?")] and truncated == [True, False]
    assert np.isfinite(probabilities).all()


# --- the registry misbehaving under a live server ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_folder(demo_folder, module_tmp_path):
    return copy_demo(demo_folder, module_tmp_path / "demo")


@pytest.fixture(scope="module")
def live_server(start_server, live_folder):
    return start_server(live_folder / "registry", env={"AINATIVE_RELOAD_INTERVAL_S": "0.2"})


def test_the_watcher_survives_an_unreadable_registry_and_reloads_afterwards(live_server, live_folder):
    registry = Registry(live_folder / "registry")
    aliases = registry.model_root(MODEL) / "aliases.json"
    saved = aliases.read_bytes()
    with live_server.client() as client:
        aliases.unlink()
        aliases.mkdir()  # reading it raises IsADirectoryError: an OSError, as a stale network-file handle does
        try:
            body = wait_until(lambda: (lambda b: b if b["components"]["reload_watcher"]["failed_checks"] >= 3 else None)(
                client.get("/ready").json()), 30, "failed checks counted in /ready")
            assert "IsADirectoryError" in body["components"]["reload_watcher"]["last_check_error"]
            assert client.get("/ready").status_code == 200 and client.post("/predict", json={"text": "hi"}).status_code == 200
        finally:
            aliases.rmdir()
            aliases.write_bytes(saved)
        new = registry.register(live_folder / "run")
        registry.promote(MODEL, new, force=True)  # the same model again: 30 test texts cannot decide the gate
        wait_until(lambda: client.post("/predict", json={"text": "refund please"}).json()["model_version"] == new,
                   RELOAD_TIMEOUT_S, f"serving {new} once the registry is readable again")
        assert client.get("/ready").json()["components"]["reload_watcher"]["failed_checks"] == 0


def relabelled_run(run: Path, target: Path) -> tuple[Path, list[str]]:
    "A copy of `run` whose model has other label names (same weights): a version with a different label set."
    shutil.copytree(run, target, copy_function=shutil.copyfile)
    config_path = target / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {i: f"v2_{label}" for i, label in config["id2label"].items()}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    config_path.write_text(json.dumps(config))
    manifest_path = target / "data" / "manifest.json"  # the registry checks that model and data agree on the labels
    manifest = json.loads(manifest_path.read_text())
    manifest.update(id2label=config["id2label"], label2id=config["label2id"])
    manifest_path.write_text(json.dumps(manifest))
    return target, list(config["id2label"].values())


def test_a_promotion_to_another_label_set_under_load_never_mixes_labels(live_server, live_folder, tmp_path):
    registry = Registry(live_folder / "registry")
    with live_server.client() as client:
        old = client.get("/model").json()["version"]
    old_labels = json.loads((registry.resolve(MODEL, old) / "model" / "config.json").read_text())["id2label"].values()
    run, new_labels = relabelled_run(live_folder / "run", tmp_path / "relabelled")
    new = registry.register(run)
    labels_of = {old: set(old_labels), new: set(new_labels)}
    answers, stop = [], threading.Event()

    def load():
        with live_server.client() as client:
            while not stop.is_set() and len(answers) < 5000:
                texts = ["refund please", "where is my card?", "I want to cancel"]
                answer = client.post("/predict/batch", json={"texts": texts})
                answers.append((answer.status_code, answer.json()))
    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(load) for _ in range(4)]
        time.sleep(0.5)
        registry.promote(MODEL, new, force=True)  # the same model again: 30 test texts cannot decide the gate
        try:
            wait_until(lambda: any(body.get("model_version") == new for _, body in answers[-20:]), RELOAD_TIMEOUT_S,
                       f"answers from {new}")
            time.sleep(0.5)
        finally:
            stop.set()
        for worker in workers: worker.result()
    assert {status for status, _ in answers} == {200}
    predictions = [p for _, body in answers for p in body["predictions"]]
    assert {p["model_version"] for p in predictions} == {old, new}
    mixed = [p for p in predictions if not {p["intent"], *(a["intent"] for a in p["top_k"])} <= labels_of[p["model_version"]]]
    assert mixed == []


# --- clients that misbehave ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def strict_server(start_server, demo_registry_dir):
    return start_server(demo_registry_dir, env={"AINATIVE_CLIENT_TIMEOUT_S": "1", "AINATIVE_MAX_CONNECTIONS": "8"})


def read_all(connection: socket.socket, timeout: float) -> bytes:
    "What the server sends until it closes the connection (or `timeout` passes)."
    connection.settimeout(timeout)
    received = b""
    try:
        while chunk := connection.recv(65536): received += chunk
    except TimeoutError:
        pass
    return received


def test_a_client_that_never_finishes_its_request_head_is_disconnected(strict_server):
    with socket.create_connection((HOST, strict_server.port)) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # ... and never the rest
        started = time.monotonic()
        assert read_all(connection, 10) == b""  # closed, without an answer
        assert time.monotonic() - started < 5


def test_a_client_that_sends_its_body_too_slowly_gets_408(strict_server):
    with socket.create_connection((HOST, strict_server.port)) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"text\":")
        answer = read_all(connection, 10)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer


def test_connections_beyond_the_limit_get_503_and_the_server_recovers(strict_server):
    idle = [socket.create_connection((HOST, strict_server.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        with strict_server.client() as client:
            assert client.post("/predict", json={"text": "refund please"}).status_code == 503
    finally:
        for connection in idle: connection.close()
    time.sleep(1.5)
    with strict_server.client() as client:
        assert client.post("/predict", json={"text": "refund please"}).status_code == 200


# --- a slim installation -----------------------------------------------------------------------------------------
def test_explain_without_the_explain_extra_is_501_naming_what_to_install(demo_registry_dir, monkeypatch):
    "A serve-only install (no torch, captum, pandas) answers /explain with 501 and the extra to install, not a 500."
    import ainative.traffic as traffic
    monkeypatch.setattr(traffic, "EXPLAIN_MODULES", ("numpy", "ainative_no_such_module"))
    with app_client(demo_registry_dir) as client:
        wait_ready(client)
        answer = client.post("/explain", json={"text": "refund please", "n_steps": 2})
        assert answer.status_code == 501, answer.text
        assert "ainative_no_such_module" in answer.json()["message"] and "ainative[explain]" in answer.json()["message"]
        assert "numpy" not in answer.json()["message"].split(":")[0]  # only what is missing is named
        assert client.post("/predict", json={"text": "refund please"}).status_code == 200  # the rest serves
