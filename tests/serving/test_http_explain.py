"""POST /explain over real HTTP: word attributions for a prediction, and bad input refused with 4xx."""
from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="module")
def client(default_server):
    with default_server.client() as client:
        yield client


def test_explain_returns_one_attribution_per_word(client, production_version):
    text = "I want a refund for my broken kettle"
    answer = client.post("/explain", json={"text": text, "n_steps": 8}, timeout=120)
    assert answer.status_code == 200, answer.text
    explanation = answer.json()
    assert [word["word"] for word in explanation["words"]] == text.split()
    assert all(isinstance(word["attribution"], float) for word in explanation["words"])
    assert explanation["model_version"] == production_version and explanation["n_steps"] == 8
    assert 0 < explanation["probability"] <= 1 and explanation["label"] == explanation["predicted"]
    assert isinstance(explanation["delta"], float)
    prediction = client.post("/predict", json={"text": text}).json()
    assert prediction["intent"] == explanation["predicted"]  # the same model, ONNX for /predict and torch for /explain


def test_explain_a_named_target(client):
    labels = [alternative["intent"] for alternative in client.post("/predict", json={"text": "cancel it", "top_k": 3}).json()["top_k"]]
    explanation = client.post("/explain", json={"text": "cancel it", "target": labels[2], "n_steps": 4}, timeout=120).json()
    assert explanation["label"] == labels[2] and explanation["predicted"] == labels[0]


@pytest.mark.parametrize("body, field", [({"text": ""}, "text"), ({"text": "   "}, "text"), ({"text": 5}, "text"),
                                         ({}, "text"), ({"text": "hi", "n_steps": 0}, "n_steps"),
                                         ({"text": "hi", "n_steps": 10_000}, "n_steps"), ({"text": "hi", "extra": 1}, "extra")])
def test_explain_bad_input_is_422_naming_the_field(client, body, field):
    answer = client.post("/explain", json=body)
    assert answer.status_code == 422 and field in answer.json()["message"]


def test_explain_unknown_target_is_422(client):
    answer = client.post("/explain", json={"text": "refund", "target": "no_such_intent", "n_steps": 2}, timeout=120)
    assert answer.status_code == 422 and "no_such_intent" in answer.json()["message"]


def test_the_step_cap_has_one_home():
    from ainative.explain import ExplainConfig
    from ainative.api import ExplainRequest
    limits = {type(rule).__name__: rule for rule in ExplainRequest.model_fields["n_steps"].metadata}
    assert limits["Le"].le == ExplainConfig.max_steps


@pytest.fixture(scope="module")
def impatient_server(start_server, demo_registry_dir):
    return start_server(demo_registry_dir, env={"AINATIVE_EXPLAIN_TIMEOUT_S": "3", "AINATIVE_EXPLAIN_QUEUE": "0"})


def test_a_slow_explanation_answers_504_and_frees_its_slot(impatient_server):
    long_text = " ".join(["please refund the order I placed for my card last week"] * 12)
    with impatient_server.client() as client:
        warm, deadline = [], time.monotonic() + 180  # the first call loads torch and the model: on a busy machine that alone
        while time.monotonic() < deadline and (not warm or warm[-1] != 200):  # outlasts the 3 s limit (504, then 503 while it runs on)
            if warm: time.sleep(0.5)
            warm.append(client.post("/explain", json={"text": "warm up the torch model", "n_steps": 1}, timeout=120).status_code)
        assert warm[-1] == 200, warm
        slow = client.post("/explain", json={"text": long_text, "n_steps": 200}, timeout=120)
        assert slow.status_code == 504 and slow.json()["error"] == "timeout"
        # with a queue of 0 and one thread, a slot still held by the stopped explanation would make this a 503
        statuses, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline:  # a 504 recurs while the stopped explanation still holds the CPU; a 503 never may
            statuses.append(client.post("/explain", json={"text": "refund", "n_steps": 1}, timeout=120).status_code)
            if statuses[-1] == 200: break
        assert statuses[-1] == 200 and 503 not in statuses, statuses
        assert client.post("/predict", json={"text": "refund please"}).status_code == 200
