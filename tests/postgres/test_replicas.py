"""Replicas of `ainative serve` on one PostgreSQL, as real processes: they share the request log (answers on one,
feedback on the other, the monitoring of either and the batch jobs see the union); started together on an empty
database they create it once, with no failed write; a database restart mid-traffic costs no answer and, once it is
back, no log row; a replica that meets a schema from a newer release keeps answering and says in /ready why it
does not log."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import httpx
import numpy as np
import sqlalchemy as sa

from ainative.monitor import attach_reference, reference_profile
from ainative.registry import Registry
from ainative.store import FEEDBACK, REQUESTS, VERSIONS
from live_server import AINATIVE, MODEL, wait_until
from postgres_cluster import PostgresCluster

TEXTS = ["where is my parcel?", "refund please", "cancel my order", "my card was charged twice"]


def writer(server) -> dict:
    "The request log writer's part of the server's /ready body."
    return httpx.get(f"{server.url}/ready", timeout=10).json()["components"]["request_log_writer"]


def rows(url: str, table: sa.Table = REQUESTS) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection: return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def set_revision(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection: connection.execute(VERSIONS.update().values(version_num=revision))
    engine.dispose()


def test_two_replicas_started_together_share_one_log(replicas, postgres_url, replica_registry, tmp_path):
    replica_a, replica_b = replicas(postgres_url, 2)  # both open the empty database at once: one creates it, under the lock
    with replica_a.client() as on_a, replica_b.client() as on_b:
        answered_a = [on_a.post("/predict", json={"text": text}, headers={"X-Request-ID": f"a-{i}"}).json() for i, text in enumerate(TEXTS)]
        answered_b = [on_b.post("/predict", json={"text": text}, headers={"X-Request-ID": f"b-{i}"}).json() for i, text in enumerate(TEXTS[:2])]
        labels = [alternative["intent"] for alternative in on_a.post("/predict", json={"text": "hello", "top_k": 50}).json()["top_k"]]
        wait_until(lambda: writer(replica_a)["written"] == len(TEXTS) + 1, 20, "replica A's answers written")
        # feedback on B for answers A gave: B finds them in the shared log
        stored = on_b.post("/feedback", json={"items": [{"request_id": "a-0", "label": labels[0]}, {"request_id": "a-1", "label": labels[1]}]})
        assert stored.status_code == 200, stored.text
        assert [item["predicted"] for item in stored.json()["items"]] == [answered_a[0]["intent"], answered_a[1]["intent"]]
        wait_until(lambda: writer(replica_b)["written"] == 2, 20, "replica B's answers written")
        again = on_a.post("/feedback", json={"request_id": "a-0", "label": labels[2]}).json()["items"][0]  # the latest wins, on A
        assert again["replaced"] and on_a.post("/feedback", json={"request_id": "b-0", "label": labels[0]}).status_code == 200
        monitored = [on_a.get("/monitor").json(), on_b.get("/monitor").json()]
    for report in monitored:  # either replica's monitoring sees the union
        assert report["window_requests"] == len(TEXTS) + 1 + 2
        assert sum(group["answers"] for group in report["feedback_accuracy"]) == 3
    assert monitored[0]["feedback_accuracy"] == monitored[1]["feedback_accuracy"]
    assert rows(postgres_url) == len(TEXTS) + 3 and rows(postgres_url, FEEDBACK) == 3
    for server in (replica_a, replica_b):
        state = writer(server)
        assert state["failed_writes"] == 0 and state["dropped"] == 0 and state["last_error"] is None, state
        assert state["logging"] == "ready" and state["schema"] == {"revision": "0001", "head": "0001", "state": "current"}
    assert {answer["model_version"] for answer in answered_a + answered_b} == {Registry(replica_registry).aliases(MODEL)["production"]}
    # the batch jobs read the shared log too: the monitoring report and the flywheel's trigger
    registry = Registry(replica_registry)
    version = registry.aliases(MODEL)["production"]
    rng = np.random.default_rng(0)
    attach_reference(registry, MODEL, version, reference_profile(labels, rng.dirichlet(np.ones(len(labels)), 50), rng.integers(10, 80, 50)))
    common = ["--registry-dir", str(replica_registry), "--database-url", postgres_url]
    report = subprocess.run([AINATIVE, "monitor", *common, "--run-dir", str(tmp_path / "monitor"), "--json"], capture_output=True, text=True, timeout=180)
    assert report.returncode == 0, report.stderr[-3000:]
    assert json.loads(report.stdout)["window"]["requests"] == len(TEXTS) + 3
    check = subprocess.run([AINATIVE, "flywheel", "--check", *common], capture_output=True, text=True, timeout=180)
    assert check.returncode == 0, check.stderr[-3000:]
    assert json.loads(check.stdout)["new_feedback"] == 3


def test_a_database_restart_mid_traffic_costs_no_answer_and_no_log_row(replicas):
    "PostgreSQL stops under a serving replica and starts again: every request is answered, and every answer logged after."
    cluster = PostgresCluster.started()  # its own server: the session's stays up for the other tests
    try:
        url = cluster.create_database()
        (server,) = replicas(url, 1)
        statuses, stop = [], threading.Event()

        def traffic():
            with server.client() as client:
                while not stop.is_set():
                    statuses.append(client.post("/predict", json={"text": TEXTS[len(statuses) % len(TEXTS)]}).status_code)
                    time.sleep(0.02)

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            wait_until(lambda: writer(server)["written"] >= 10, 20, "some answers written before the restart")
            cluster.stop("fast")  # ends every session: the pool's connections die with it
            wait_until(lambda: writer(server)["failed_writes"] >= 1, 20, "a failed write while the database is down")
            down = writer(server)
            assert down["logging"] == "not_ready" and down["logging_reason"] and down["buffered"] >= 1, down
            assert httpx.get(f"{server.url}/ready").status_code == 200  # answers never depended on the log
            time.sleep(1)
            cluster.start()
            time.sleep(1)
        finally:
            stop.set()
            sender.join(30)
        answered = len(statuses)
        assert set(statuses) == {200} and answered >= 20, statuses
        state = wait_until(lambda: (lambda w: w if w["written"] == answered else None)(writer(server)), 30,
                           "every answer written once the database is back")
        assert state["buffered"] == 0 and state["dropped"] == 0 and state["logging"] == "ready" and state["failed_writes"] >= 1
        assert rows(url) == answered
        server.stop()
    finally:
        cluster.remove()


def test_a_replica_meeting_a_newer_schema_answers_and_says_why_it_does_not_log(replicas, postgres_url):
    "A newer release migrates the shared database during a rolling update: the old replica stays ready, buffers, and says why."
    (server,) = replicas(postgres_url, 1)
    with server.client() as client:
        assert client.post("/predict", json={"text": TEXTS[0]}).status_code == 200
        wait_until(lambda: writer(server)["written"] == 1, 20, "the first answer written")
        set_revision(postgres_url, "0002")  # what the new release's `ainative monitor migrate` leaves behind
        assert {client.post("/predict", json={"text": text}).status_code for text in TEXTS} == {200}
        ready = wait_until(lambda: (lambda r: r if r.json()["components"]["request_log_writer"]["logging"] == "not_ready" else None)(
            client.get("/ready")), 20, "/ready saying the log is not written")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        state = ready.json()["components"]["request_log_writer"]
        assert state["schema"] == {"revision": "0002", "head": "0001", "state": "newer"} and state["state"] == "running"
        assert "0002" in state["logging_reason"] and "rolling update" in state["logging_reason"] and state["buffered"] == len(TEXTS)
        assert client.get("/health").status_code == 200  # a restart would not help: nothing for the liveness probe
        assert rows(postgres_url) == 1  # nothing written into the schema it does not know
        set_revision(postgres_url, "0001")  # a schema it knows again (the rollout was rolled back): the rows go in
        state = wait_until(lambda: (lambda w: w if w["buffered"] == 0 else None)(writer(server)), 20, "the buffered rows written")
        assert state["logging"] == "ready" and state["written"] == 1 + len(TEXTS) and rows(postgres_url) == 1 + len(TEXTS)
