"""Graceful shutdown of a real server: SIGTERM with requests in flight answers every one of them, then the process exits."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest

MAX_WAIT_MS = 2500  # the requests wait this long in the micro-batcher, so they are surely in flight at SIGTERM
SIGTERM_AFTER_S = 0.8  # long enough for every request to reach the server on loopback, well before the batch runs
EXIT_TIMEOUT_S = 45    # serve() drains for up to 30 s (timeout_graceful_shutdown)
TEXTS = ["I cannot log in to my account", "please cancel my order", "my card was charged twice", "refund please"] * 4


@dataclass
class Outcome:
    answers: list           # httpx responses, or the exception a request ended with
    answered_at: list       # time.monotonic() of each answer
    sigterm_at: float
    returncode: int | None  # None: still running after EXIT_TIMEOUT_S
    stderr: str


async def requests_then_sigterm(server) -> tuple[list, list, float]:
    answered_at = [0.0] * (len(TEXTS) + 1)
    async with server.async_client(timeout=60) as client:
        async def post(index, path, body):
            try:
                return await client.post(path, json=body)
            finally:
                answered_at[index] = time.monotonic()
        tasks = [asyncio.create_task(post(i, "/predict", {"text": text})) for i, text in enumerate(TEXTS)]
        tasks.append(asyncio.create_task(post(len(TEXTS), "/predict/batch", {"texts": TEXTS[:4]})))
        await asyncio.sleep(SIGTERM_AFTER_S)
        assert not any(task.done() for task in tasks), "the requests were answered before SIGTERM: nothing was in flight"
        sigterm_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*tasks, return_exceptions=True)
    return answers, answered_at, sigterm_at


@pytest.fixture(scope="module")
def outcome(start_server, demo_registry_dir) -> Outcome:
    "What happened when a server got SIGTERM with 17 requests in flight."
    server = start_server(demo_registry_dir, env={"AINATIVE_MAX_WAIT_MS": str(MAX_WAIT_MS), "AINATIVE_MAX_BATCH_SIZE": "64"})
    answers, answered_at, sigterm_at = asyncio.run(requests_then_sigterm(server))
    try:
        returncode = server.process.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        returncode = None
    return Outcome(answers, answered_at, sigterm_at, returncode, server.stderr())


def test_every_request_in_flight_at_sigterm_is_answered(outcome):
    failures = [answer for answer in outcome.answers if isinstance(answer, Exception)]
    assert not failures, f"requests reset or dropped: {failures[:3]}\n{outcome.stderr[-3000:]}"
    assert [answer.status_code for answer in outcome.answers] == [200] * len(outcome.answers)
    assert [answer.json()["intent"] for answer in outcome.answers[:-1]] == [
        answer.json()["intent"] for answer in outcome.answers[:4]] * 4  # each got its own text's answer
    assert len(outcome.answers[-1].json()["predictions"]) == 4
    assert all(at > outcome.sigterm_at for at in outcome.answered_at)  # they were answered during the shutdown


def test_the_process_exits_within_bounded_time_without_a_traceback(outcome):
    assert outcome.returncode is not None, f"still running {EXIT_TIMEOUT_S} s after SIGTERM:\n{outcome.stderr[-3000:]}"
    assert outcome.returncode in (0, -signal.SIGTERM), outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr and "ERROR" not in outcome.stderr, outcome.stderr[-3000:]


def test_the_process_exits_by_itself_after_draining(outcome):
    "uvicorn re-raises the captured SIGTERM once the drain is done, so the status is that of SIGTERM (shell: 143)."
    assert outcome.returncode in (0, -signal.SIGTERM)
