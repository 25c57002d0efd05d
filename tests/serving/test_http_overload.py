"""Overload over real HTTP: a full queue answers 503 with Retry-After at once, and the server recovers."""
from __future__ import annotations

import asyncio

import pytest

from live_server import scrape

BURST = 64


@pytest.fixture(scope="module")
def server(start_server, demo_registry_dir):
    # one text per model call and room for one waiting text: while the model runs, every other arrival finds the queue full
    return start_server(demo_registry_dir, env={"AINATIVE_MAX_QUEUE": "1", "AINATIVE_MAX_BATCH_TEXTS": "1", "AINATIVE_MAX_BATCH_SIZE": "1",
                                                "AINATIVE_MAX_WAIT_MS": "50", "AINATIVE_THREADS": "1"})


async def burst(server, count: int) -> list:
    "`count` concurrent /predict requests, each on its own connection; responses or exceptions, in order."
    async with server.async_client() as client:
        texts = [f"where is my order number {i}, it has not arrived yet" for i in range(count)]
        return await asyncio.gather(*(client.post("/predict", json={"text": text}) for text in texts), return_exceptions=True)


def test_a_burst_over_the_queue_gets_503_with_retry_after(server):
    answers = []
    for _ in range(3):  # bounded: one burst nearly always overloads a queue of one; retry in case the machine was idle-fast
        answers = asyncio.run(burst(server, BURST))
        if any(getattr(a, "status_code", None) == 503 for a in answers): break
    errors = [a for a in answers if isinstance(a, Exception)]
    assert not errors, errors[:3]
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503}, statuses  # no other 5xx, no 504
    refused = [a for a in answers if a.status_code == 503]
    assert refused and statuses.count(200) >= 1, statuses
    for answer in refused:
        assert answer.headers["retry-after"].isdigit() and int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"] == "overloaded" and "limit 1" in answer.json()["message"]
    for answer in answers:
        if answer.status_code == 200:
            assert answer.json()["intent"] and answer.json()["model_version"]


def test_the_server_answers_normally_after_the_burst(server):
    with server.client() as client:
        for _ in range(5):
            answer = client.post("/predict", json={"text": "please cancel my order"})
            assert answer.status_code == 200 and answer.json()["intent"]
        assert client.get("/ready").status_code == 200
        families = scrape(client)
    requests = {(s.labels["handler"], s.labels["code"]): s.value for s in families["ainative_http_requests"] if s.name.endswith("_total")}
    assert requests.get(("/predict", "503"), 0) >= 1 and requests[("/predict", "200")] >= 5
    assert not [key for key in requests if key[1].startswith("5") and key[1] != "503"], requests
    assert [s.value for s in families["ainative_queue_depth"]] == [0]  # nothing left behind in the queue
