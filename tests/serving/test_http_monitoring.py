"""The request log, /feedback and /monitor on a real server: every answer logged, nothing lost on SIGTERM, a broken or
locked database never costs an answer, and bad feedback is refused naming the item."""
from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from live_server import MODEL, copy_demo, scrape, wait_until


@pytest.fixture(scope="module")
def folder(demo_folder, tmp_path_factory):
    return copy_demo(demo_folder, tmp_path_factory.mktemp("monitoring") / "demo")


def database(folder) -> str:
    return str(folder / "registry" / MODEL / "monitor.sqlite")


def logged(path: str) -> list[tuple]:
    "(request_id, position, label, model_version) of every logged answer (none before the server created the table)."
    with sqlite3.connect(path) as connection:
        try: return connection.execute("SELECT request_id, position, label, model_version FROM requests").fetchall()
        except sqlite3.OperationalError: return []


@pytest.fixture(scope="module")
def server(start_server, folder):
    return start_server(folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "0.1"})


def test_every_answer_is_logged_with_its_request_id(server, folder):
    with server.client() as client:
        single = client.post("/predict", json={"text": "where is my parcel?"}, headers={"X-Request-ID": "log-single"}).json()
        batch = client.post("/predict/batch", json={"texts": ["refund please", "cancel my order"]},
                            headers={"X-Request-ID": "log-batch"}).json()
        wait_until(lambda: {("log-single", 0), ("log-batch", 0), ("log-batch", 1)} <= {row[:2] for row in logged(database(folder))},
                   10, "the answers in the request log")
    rows = {row[:2]: row for row in logged(database(folder))}
    assert rows[("log-single", 0)][2:] == (single["intent"], single["model_version"])
    assert rows[("log-batch", 1)][2] == batch["predictions"][1]["intent"]


def test_feedback_is_stored_and_the_latest_correction_wins(server, folder):
    with server.client() as client:
        answer = client.post("/predict", json={"text": "my card was charged twice"}, headers={"X-Request-ID": "fb-1"}).json()
        labels = [alternative["intent"] for alternative in
                  client.post("/predict", json={"text": "hello", "top_k": 50}).json()["top_k"]]
        first = client.post("/feedback", json={"request_id": "fb-1", "label": labels[0]})  # right after: no wait for the writer
        assert first.status_code == 200, first.text
        second = client.post("/feedback", json={"items": [{"request_id": "fb-1", "label": labels[1]},
                                                          {"text": "is my parcel lost?", "label": labels[2]}]})
        assert second.status_code == 200 and second.json()["stored"] == 2
        summary = client.get("/monitor").json()
    with sqlite3.connect(database(folder)) as connection:
        stored = connection.execute("SELECT label FROM feedback WHERE request_id = 'fb-1'").fetchall()
    assert stored == [(labels[1],)]
    versions = {row["group"]: row for row in summary["feedback_accuracy"]}
    assert versions[answer["model_version"]]["answers"] >= 1 and summary["window_requests"] >= 2
    assert summary["request_log"]["dropped"] == 0


@pytest.mark.parametrize("body, named", [
    ({"request_id": "fb-unknown", "label": "refund_request"}, "fb-unknown"),
    ({"items": [{"text": "hi", "label": "refund_request"}, {"text": "hi", "label": "no_such_intent"}]}, "no_such_intent"),
    ({"request_id": "x", "text": "both", "label": "refund_request", "colour": "red"}, "colour"),
    ({"label": 3}, "label"),
])
def test_bad_feedback_is_422_naming_the_item_and_stores_nothing(server, folder, body, named):
    with sqlite3.connect(database(folder)) as connection:
        before = connection.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    with server.client() as client:
        refused = client.post("/feedback", json=body)
    assert refused.status_code == 422 and named in refused.text, refused.text
    with sqlite3.connect(database(folder)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == before


def test_a_locked_database_costs_no_answer_and_overflow_is_counted(start_server, folder):
    server = start_server(folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "0.1", "AINATIVE_LOG_BUFFER_ROWS": "20",
                                                     "AINATIVE_BUSY_TIMEOUT_S": "0.2"})
    lock = sqlite3.connect(database(folder), timeout=5, isolation_level=None)
    with server.client() as client:
        client.post("/predict", json={"text": "open the store first"})
        time.sleep(0.5)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the database: every write of the log waits, then fails
        try:
            statuses = [client.post("/predict", json={"text": f"where is order {i}"}).status_code for i in range(60)]
            assert set(statuses) == {200}
            state = wait_until(lambda: (lambda c: c if c["failed_writes"] >= 1 else None)(
                client.get("/ready").json()["components"]["request_log_writer"]), 20, "a failed write reported")
            assert client.get("/ready").status_code == 200 and "locked" in state["last_error"]
            samples = scrape(client)["ainative_request_log_rows"]
            dropped = [s.value for s in samples if s.labels.get("outcome") == "dropped" and s.name.endswith("_total")]
            assert dropped and dropped[0] >= 60 - 20
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_until(lambda: client.get("/ready").json()["components"]["request_log_writer"]["buffered"] == 0, 20,
                   "the buffered answers written once the lock is gone")


def test_a_corrupt_database_costs_no_answer(start_server, demo_folder, tmp_path):
    folder = copy_demo(demo_folder, tmp_path / "demo")
    database_file = folder / "registry" / MODEL / "monitor.sqlite"
    for sidecar in ("-wal", "-shm"):  # copied from a server that wrote the log: a WAL would mask the damage
        database_file.with_name(database_file.name + sidecar).unlink(missing_ok=True)
    database_file.write_bytes(b"this is not a database" * 100)
    server = start_server(folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "0.1"})
    with server.client() as client:
        assert {client.post("/predict", json={"text": "refund please"}).status_code for _ in range(5)} == {200}
        state = wait_until(lambda: (lambda c: c if c["last_error"] else None)(
            client.get("/ready").json()["components"]["request_log_writer"]), 20, "the store fault reported")
        assert "MonitorStoreError" in state["last_error"] and client.get("/ready").status_code == 200
        assert client.get("/monitor").status_code == 503
        assert client.post("/feedback", json={"text": "hi", "label": "refund_request"}).status_code == 503


def test_sigterm_mid_traffic_loses_no_answered_request(start_server, folder):
    server = start_server(folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "5"})  # the log holds answers a while
    answered, stop = [], False

    def send(worker: int):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(10_000):
                if stop: return
                try:
                    answer = client.post("/predict", json={"text": f"refund order {i}"}, headers={"X-Request-ID": f"term-{worker}-{i}"})
                except httpx.TransportError:
                    return
                if answer.status_code == 200: answered.append(answer.json()["request_id"])
    with ThreadPoolExecutor(4) as pool:
        senders = [pool.submit(send, worker) for worker in range(4)]
        wait_until(lambda: len(answered) >= 100, 30, "100 answers")
        server.process.terminate()  # SIGTERM while requests are in flight
        assert server.process.wait(60) in (0, -15)  # uvicorn re-raises the signal after its graceful shutdown
        stop = True
        for sender in senders: sender.result()
    logged_ids = {row[0] for row in logged(database(folder))}
    assert answered and set(answered) <= logged_ids, f"{len(set(answered) - logged_ids)} answered requests are not in the log"


def attach_validation_reference(folder) -> list[str]:
    "The served version's reference profile, from its run's validation texts (as the explainability stage makes it)."
    import pandas as pd
    from ainative.monitor import attach_reference, reference_profile
    from ainative.registry import Registry
    from ainative.serving import ModelRuntime
    registry = Registry(folder / "registry")
    runtime = ModelRuntime(registry, MODEL, "production", device="cpu")
    texts = pd.read_parquet(folder / "run" / "data" / "validation.parquet").text.tolist()
    probabilities, _ = runtime.predict(texts)
    attach_reference(registry, MODEL, runtime.version, reference_profile(runtime.labels, probabilities, [len(t) for t in texts]))
    return texts


def test_drift_shows_for_shifted_traffic_and_not_for_the_usual(start_server, demo_folder, tmp_path):
    folder = copy_demo(demo_folder, tmp_path / "demo")
    texts = attach_validation_reference(folder)
    server = start_server(folder / "registry", env={"AINATIVE_MIN_REQUESTS": "50", "AINATIVE_WINDOW_REQUESTS": "120",
                                                     "AINATIVE_DRIFT_INTERVAL_S": "0.5"})
    with server.client() as client:
        for text in texts * 2:
            assert client.post("/predict", json={"text": text}).status_code == 200
        usual = client.get("/monitor").json()["drift"]
        assert usual["status"] in ("ok", "warn") and usual["alerts"] == [], usual
        assert usual["scores"]["label_psi"]["status"] == "ok"
        refund_only = [t for t in texts if "refund" in t.lower() or "money back" in t.lower()] or texts[:3]
        for i in range(120):
            client.post("/predict", json={"text": refund_only[i % len(refund_only)]})
        shifted = client.get("/monitor").json()["drift"]
        assert shifted["scores"]["label_psi"]["status"] == "alert" and shifted["alerts"], shifted
        status = wait_until(lambda: [s.value for s in scrape(client).get("ainative_drift_status", [])
                                     if s.labels.get("score") == "label_psi"], 10, "the drift gauge")
        assert status == [2.0]
