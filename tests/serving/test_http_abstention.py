"""Abstention over HTTP: a policy attached to the served version travels with it (hot reload), /predict and
/predict/batch decline per text below its threshold, a version without one answers exactly as before, and a policy
the server cannot apply as evaluated is refused with the reason on /model."""
from __future__ import annotations

import numpy as np
import pytest

from ainative.abstention import AbstentionPolicy, save_policy
from ainative.registry import Registry
from live_server import MODEL, copy_demo, scrape, wait_until

TEXTS = ["I want a refund for my order", "where is my parcel", "cancel my order please", "zxqv blorp wibble",
         "what is the weather on mars", "refund", "the the the", "my package has not arrived yet"]


def served_labels(registry: Registry, version: str) -> list[str]:
    label2id = registry.show(MODEL, version)["labels"]["label2id"]
    return sorted(label2id, key=label2id.get)


@pytest.fixture(scope="module")
def served(start_server, demo_folder, module_tmp_path):
    "A server on a copy of the demo registry, with the answers it gave before any policy."
    folder = copy_demo(demo_folder, module_tmp_path / "demo")
    server = start_server(folder / "registry", env={"AINATIVE_RELOAD_INTERVAL_S": "0.2"})
    with server.client() as client:
        before = {text: client.post("/predict", json={"text": text}).json() for text in TEXTS}
        model = client.get("/model").json()
    return server, Registry(folder / "registry"), before, model


def test_without_a_policy_every_text_is_answered_as_today(served):
    _, _, before, model = served
    assert model["abstention"] is None
    for answer in before.values():
        assert answer["abstained"] is False and answer["intent"] == answer["top_k"][0]["intent"]
        assert isinstance(answer["intent_id"], int)


def test_the_threshold_travels_with_the_version_and_declines_per_text(served, tmp_path):
    server, registry, before, model = served
    confidences = sorted(answer["confidence"] for answer in before.values())
    gaps = np.diff(confidences)
    middle = int(np.argmax(gaps))  # the widest gap: texts on both sides, far from the threshold
    threshold = (confidences[middle] + confidences[middle + 1]) / 2
    declined = {text for text, answer in before.items() if answer["confidence"] < threshold}
    assert 0 < len(declined) < len(TEXTS)
    policy = AbstentionPolicy("threshold", served_labels(registry, model["version"]), score="max_probability",
                              threshold=threshold, temperature=model["temperature"], target_precision=0.9)
    save_policy(policy, tmp_path / "abstention")
    registry.attach(MODEL, model["version"], "abstention", tmp_path / "abstention", info={"threshold": threshold})
    with server.client() as client:
        wait_until(lambda: client.get("/model").json()["abstention"] is not None, 60, "the policy to be loaded")
        assert client.get("/model").json()["abstention"]["threshold"] == pytest.approx(threshold)
        single = {text: client.post("/predict", json={"text": text}).json() for text in TEXTS}
        batch = client.post("/predict/batch", json={"texts": TEXTS}).json()["predictions"]
        metrics = scrape(client)
        schema = client.get("/openapi.json").json()["components"]["schemas"]["Prediction"]["properties"]
    for text, answer in single.items():
        assert answer["abstained"] is (text in declined), (text, answer)
        assert answer["confidence"] == pytest.approx(before[text]["confidence"], abs=1e-6)
        assert answer["top_k"] == before[text]["top_k"]  # the candidates stay visible, e.g. for a hand-over
        if text in declined: assert answer["intent"] is None and answer["intent_id"] is None
        else: assert answer["intent"] == before[text]["intent"]
    assert [answer["abstained"] for answer in batch] == [text in declined for text in TEXTS]
    assert [answer["intent"] for answer in batch] == [single[text]["intent"] for text in TEXTS]
    assert sum(s.value for s in metrics["ainative_abstentions"] if s.name.endswith("_total")) == 2 * len(declined)
    assert "abstained" in schema and "null" in str(schema["intent"])


def test_a_policy_chosen_for_other_labels_is_refused_and_said(start_server, demo_folder, tmp_path):
    folder = copy_demo(demo_folder, tmp_path / "demo")
    registry = Registry(folder / "registry")
    server = start_server(folder / "registry", env={"AINATIVE_RELOAD_INTERVAL_S": "0.2"})
    with server.client() as client:
        version = client.get("/model").json()["version"]
        save_policy(AbstentionPolicy("threshold", ["a", "b"], score="energy", threshold=0.0), tmp_path / "abstention")
        registry.attach(MODEL, version, "abstention", tmp_path / "abstention")
        reload = wait_until(lambda: (lambda m: m["last_reload"] if m["failed_version"] else None)(client.get("/model").json()),
                            60, "the reload to fail")
        answer = client.post("/predict", json={"text": "where is my parcel"})
    server.stop()  # before pytest deletes its registry (tmp_path)
    assert not reload["ok"] and "abstention" in reload["error"] and "labels" in reload["error"]
    assert answer.status_code == 200 and answer.json()["abstained"] is False  # the loaded runtime keeps answering
