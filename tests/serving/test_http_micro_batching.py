"""Concurrent clients over real HTTP: their texts share micro-batches, and each still gets the answer to its own text."""
from __future__ import annotations

import asyncio

import pytest

from live_server import scrape

MAX_WAIT_MS = 300  # long enough that requests fired together on loopback always meet in one batch


@pytest.fixture(scope="module")
def server(start_server, demo_registry_dir):
    return start_server(demo_registry_dir, env={"AINATIVE_MAX_WAIT_MS": str(MAX_WAIT_MS), "AINATIVE_MAX_BATCH_SIZE": "64"})


async def post_together(server, requests: list[tuple[str, bytes | dict]]) -> list:
    "POST every (path, body) at once, each on its own connection; the responses (or the exceptions) in order."
    async with server.async_client() as client:
        def post(path, body):
            if isinstance(body, bytes):
                return client.post(path, content=body, headers={"content-type": "application/json"})
            return client.post(path, json=body)
        return await asyncio.gather(*(post(path, body) for path, body in requests), return_exceptions=True)


def batch_size_count(client) -> tuple[float, float]:
    "(model calls, texts) observed by ainative_batch_size so far."
    samples = scrape(client)["ainative_batch_size"]
    return (next(s.value for s in samples if s.name == "ainative_batch_size_count"),
            next(s.value for s in samples if s.name == "ainative_batch_size_sum"))


def test_concurrent_requests_are_batched_and_answered_in_their_own_right(server):
    texts = ["I cannot log in to my account", "please cancel my order", "my card was charged twice", "refund please"] * 4
    with server.client() as client:
        alone = {text: client.post("/predict", json={"text": text}).json()["intent"] for text in set(texts)}
        calls_before, texts_before = batch_size_count(client)
        answers = asyncio.run(post_together(server, [("/predict", {"text": text}) for text in texts]))
        assert all(not isinstance(a, Exception) and a.status_code == 200 for a in answers), answers
        assert [a.json()["intent"] for a in answers] == [alone[text] for text in texts]  # no answer went to the wrong request
        calls_after, texts_after = batch_size_count(client)
    assert texts_after - texts_before == len(texts)
    assert calls_after - calls_before < len(texts)  # at least two requests shared a model call


def test_one_bad_text_does_not_fail_the_other_requests_of_its_batch(server):
    good = [("/predict", {"text": "please cancel my order"})] * 4
    poisoned = ("/predict", b'{"text": "please \\ud800 my order"}')  # similar length: the same length group
    answers = asyncio.run(post_together(server, [good[0], good[1], poisoned, good[2], good[3]]))
    statuses = [a.status_code if not isinstance(a, Exception) else repr(a) for a in answers]
    assert statuses[:2] + statuses[3:] == [200] * 4, statuses


def test_the_server_still_serves_after_a_failed_batch(server):
    with server.client() as client:
        client.post("/predict", content=b'{"text": "\\ud800"}', headers={"content-type": "application/json"})
    # a new connection: after that 500 uvicorn closes the connection without `Connection: close`, so a keep-alive
    # client's next request on it may be reset (part of the lone-surrogate bug)
    with server.client() as client:
        assert client.post("/predict", json={"text": "refund please"}).status_code == 200
        assert client.get("/ready").status_code == 200
