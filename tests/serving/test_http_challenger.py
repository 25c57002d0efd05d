"""A challenger beside the champion over real HTTP: a shadow scores the traffic but is never returned; a split is
sticky per client key; a challenger that fails to load leaves /predict and /ready alone (and the split falls back,
counted); the request log keeps which version answered in which role."""
from __future__ import annotations

import pytest

from ainative.monitor import RequestStore, default_database_url
from ainative.registry import Registry
from ainative.traffic import share_bucket
from live_server import MODEL, copy_demo, scrape, wait_until

TEXTS = ["where is my parcel?", "I want my money back", "cancel my order please", "my card was charged twice"]
LOAD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def folder(demo_folder, module_tmp_path):
    "A private demo registry with a second version (the same run again) on `challenger`, and a damaged third one on `broken`."
    folder = copy_demo(demo_folder, module_tmp_path / "demo")
    registry = Registry(folder / "registry")
    registry.promote(MODEL, registry.register(folder / "run"), "challenger")
    broken = registry.register(folder / "run")
    registry.promote(MODEL, broken, "broken")
    for onnx in (registry.resolve(MODEL, broken) / "onnx").glob("*.onnx"):  # damaged after its promotion, as disk rot would
        onnx.chmod(0o644)
        with open(onnx, "r+b") as file:
            file.seek(onnx.stat().st_size // 2)
            file.write(b"\xde\xad\xbe\xef" * 64)
    return folder


@pytest.fixture(scope="module")
def versions(folder) -> dict[str, str]:
    aliases = Registry(folder / "registry").aliases(MODEL)
    return {"champion": aliases["production"], "challenger": aliases["challenger"], "broken": aliases["broken"]}


def log_rows(folder) -> list[dict]:
    "Every row of the server's request log, shadow answers included."
    store = RequestStore(default_database_url(folder / "registry", MODEL))
    try: return store.recent(shadow=True)
    finally: store.close()


def challenger_state(client, state: str) -> dict | None:
    described = client.get("/ready").json().get("challenger") or {}
    return described if described.get("state") == state else None


def test_a_shadow_scores_every_request_but_never_answers(start_server, folder, versions):
    server = start_server(folder / "registry", env={"AINATIVE_LOG_FLUSH_S": "0.1"},
                          args=("--challenger", "challenger", "--shadow-share", "1"))
    with server.client() as client:
        wait_until(lambda: challenger_state(client, "serving"), LOAD_TIMEOUT_S, "the challenger loading")
        ids = []
        for text in TEXTS:
            answer = client.post("/predict", json={"text": text})
            assert answer.status_code == 200 and answer.headers["X-Model-Role"] == "champion"
            assert answer.json()["model_version"] == versions["champion"]
            ids.append(answer.json()["request_id"])
        batch = client.post("/predict/batch", json={"texts": TEXTS[:2]}).json()
        assert {p["model_version"] for p in batch["predictions"]} == {versions["champion"]}
        ids.append(batch["request_id"])
        wait_until(lambda: client.get("/ready").json()["challenger"]["counts"].get("scored") == len(TEXTS) + 2,
                   30, "the shadow scoring every text")
        monitored = client.get("/monitor").json()
        metrics = scrape(client)
        model = client.get("/model").json()
    comparison = monitored["comparison"]
    assert comparison["status"] == "compared" and comparison["challenger"]["version"] == versions["challenger"]
    assert comparison["agreement"] == {"pairs": len(TEXTS) + 2, "agree": len(TEXTS) + 2, "rate": 1.0}  # the same weights
    assert comparison["accuracy_test"]["status"] == "too_few" and comparison["serving"]["mode"] == "shadow"
    assert model["version"] == versions["champion"] and model["challenger"]["version"] == versions["challenger"]
    roles = {(s.labels["role"], s.labels["version"]): s.value for s in metrics["ainative_role_answers"] if s.name.endswith("_total")}
    assert roles == {("champion", versions["champion"]): len(TEXTS) + 2, ("shadow", versions["challenger"]): len(TEXTS) + 2}
    assert {s.labels["outcome"]: s.value for s in metrics["ainative_shadow_texts"]} == {"scored": 6, "dropped": 0, "failed": 0}
    assert [s.value for s in metrics["ainative_challenger_agreement"]] == [1.0]
    rows = log_rows(folder)
    shadows = [row for row in rows if row["role"] == "shadow"]
    assert {row["request_id"] for row in shadows} == set(ids) and {row["model_version"] for row in shadows} == {versions["challenger"]}
    assert sorted((row["request_id"], row["position"]) for row in shadows) == sorted(
        (row["request_id"], row["position"]) for row in rows if row["role"] == "champion")


def test_a_split_is_sticky_per_client_key(start_server, folder, versions):
    server = start_server(folder / "registry", args=("--challenger", "challenger", "--challenger-mode", "split", "--split-share", "0.5"))
    keys = [f"customer-{i}" for i in range(16)]
    expected = {key: versions["challenger"] if share_bucket(key) < 0.5 else versions["champion"] for key in keys}
    assert len(set(expected.values())) == 2, "the keys must fall on both sides"
    with server.client() as client:
        wait_until(lambda: challenger_state(client, "serving"), LOAD_TIMEOUT_S, "the challenger loading")
        for key in keys:
            answers = [client.post("/predict", json={"text": text}, headers={"X-Client-Key": key}) for text in TEXTS[:3]]
            assert {a.json()["model_version"] for a in answers} == {expected[key]}, key  # one user, one model
            role = "challenger" if expected[key] == versions["challenger"] else "champion"
            assert {a.headers["X-Model-Role"] for a in answers} == {role}
        keyless = client.post("/predict", json={"text": TEXTS[0]})
        assert keyless.json()["model_version"] == versions["champion"]
        batch = client.post("/predict/batch", json={"texts": TEXTS}, headers={"X-Client-Key": keys[0]}).json()
        assert batch["model_version"] == expected[keys[0]]
        client.get("/monitor")  # flushes the log
    answered = [row for row in log_rows(folder) if row["request_id"] in {batch["request_id"]}]
    assert {row["role"] for row in answered} == {"challenger" if expected[keys[0]] == versions["challenger"] else "champion"}


def test_a_broken_challenger_never_touches_the_champion(start_server, folder, versions):
    server = start_server(folder / "registry", args=("--challenger", "broken", "--challenger-mode", "split", "--split-share", "1"))
    with server.client() as client:
        failed = wait_until(lambda: challenger_state(client, "failed"), LOAD_TIMEOUT_S, "the broken challenger being refused")
        assert failed["failed_version"] == versions["broken"] and "failed verification" in failed["reason"]
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["model_version"] == versions["champion"]
        for i, text in enumerate(TEXTS * 2):  # every key is in the challenger's share, and the champion answers them all
            answer = client.post("/predict", json={"text": text}, headers={"X-Client-Key": f"k{i}"})
            assert answer.status_code == 200 and answer.json()["model_version"] == versions["champion"]
        assert client.get("/health").status_code == 200
        metrics = scrape(client)
        assert [s.value for s in metrics["ainative_split_fallbacks"]] == [len(TEXTS) * 2]
        assert {s.labels["result"]: s.value for s in metrics["ainative_challenger_reloads"] if s.name.endswith("_total")} == {"failure": 1.0}
        assert client.get("/model").json()["challenger"]["state"] == "failed"


def test_a_challenger_alias_that_does_not_exist_waits(start_server, folder, versions):
    server = start_server(folder / "registry", args=("--challenger", "next"))
    with server.client() as client:
        waiting = wait_until(lambda: challenger_state(client, "waiting"), 30, "the challenger waiting for its alias")
        assert "next" in waiting["reason"] and client.post("/predict", json={"text": "refund"}).status_code == 200


def test_ainative_monitor_prints_the_comparison(folder, versions, tmp_path):
    "The batch job reads both versions off the log and says how they compare (here: too little feedback to test)."
    import subprocess

    import numpy as np

    from ainative.monitor import attach_reference, reference_profile, request_row
    from live_server import AINATIVE
    registry = Registry(folder / "registry")
    id2label = registry.show(MODEL, versions["challenger"])["labels"]["id2label"]
    labels = [id2label[key] for key in sorted(id2label, key=int)]
    rng = np.random.default_rng(0)
    attach_reference(registry, MODEL, versions["challenger"], reference_profile(labels, rng.dirichlet(np.ones(len(labels)), 50),
                                                                                rng.integers(10, 80, 50)))
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    store = RequestStore(url)
    rows = []
    for i in range(8):
        prediction = {"intent": labels[0], "confidence": 0.9, "model_version": versions["champion"], "top_k": []}
        rows.append(request_row(f"r{i}", 0, prediction, "text", 0.01))
        rows.append(request_row(f"r{i}", 0, {**prediction, "intent": labels[i % 2], "model_version": versions["challenger"]},
                                "text", 0.02, role="shadow"))
    store.write_requests(rows)
    store.close()
    command = [AINATIVE, "monitor", "--registry-dir", str(folder / "registry"), "--version", "challenger", "--database-url", url,
               "--run-dir", str(tmp_path / "run")]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (f"champion {versions['champion']} vs challenger {versions['challenger']}: agreement 50.0% of 8 shadow pairs; "
            "feedback accuracy n/a vs n/a (needs 20 answers with feedback per version; has 0 (champion) and 0 (challenger))") in finished.stdout
