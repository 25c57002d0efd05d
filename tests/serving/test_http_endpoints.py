"""Every endpoint of `ainative serve`, over real HTTP on loopback: what a client gets back, field by field."""
from __future__ import annotations

import pytest

from live_server import MODEL, scrape

CONFIDENT_POOL = ["I cannot log in to my account", "please cancel my order", "my card was charged twice",
                  "reset my password please", "refund please", "cancel it", "the package arrived damaged",
                  "I want a refund for my order", "where is my parcel?", "track my order"]
LONG_TEXT = " ".join(["my order never arrived and nobody answers my emails"] * 30)  # ~300 words: truncated to 64 tokens


@pytest.fixture(scope="module")
def client(default_server):
    "A client of the session's default server (admin endpoints off: no AINATIVE_ADMIN_TOKEN)."
    with default_server.client() as client:
        yield client


def check_prediction(prediction: dict, top_k: int, version: str):
    "The invariants of one prediction: fields, confidence in (0, 1], alternatives sorted and as many as asked."
    assert set(prediction) == {"intent", "intent_id", "confidence", "top_k", "abstained", "truncated", "model_version", "request_id"}
    assert isinstance(prediction["intent"], str) and prediction["intent"]
    assert isinstance(prediction["intent_id"], int) and prediction["intent_id"] >= 0
    assert prediction["abstained"] is False  # the demo version has no abstention policy
    assert 0 < prediction["confidence"] <= 1
    alternatives = prediction["top_k"]
    assert len(alternatives) == top_k
    confidences = [alternative["confidence"] for alternative in alternatives]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    assert alternatives[0] == {"intent": prediction["intent"], "confidence": prediction["confidence"]}
    assert len({alternative["intent"] for alternative in alternatives}) == top_k
    assert prediction["model_version"] == version
    assert isinstance(prediction["request_id"], str) and prediction["request_id"]


def distribution(prediction: dict) -> dict[str, float]:
    return {alternative["intent"]: alternative["confidence"] for alternative in prediction["top_k"]}


# --- /predict -------------------------------------------------------------------------------------------------------
def test_predict_answers_with_the_production_version(client, production_version):
    answer = client.post("/predict", json={"text": "I was charged twice for my order"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    check_prediction(answer.json(), top_k=5, version=production_version)  # the server's default top_k
    assert answer.json()["truncated"] is False


@pytest.mark.parametrize("top_k", [1, 3, 6])
def test_predict_returns_as_many_alternatives_as_asked(client, production_version, top_k):
    answer = client.post("/predict", json={"text": "where is my parcel?", "top_k": top_k})
    assert answer.status_code == 200
    check_prediction(answer.json(), top_k=top_k, version=production_version)


def test_top_k_beyond_the_number_of_intents_returns_every_intent(client):
    labels = client.get("/model").json()["labels"]
    answer = client.post("/predict", json={"text": "where is my parcel?", "top_k": 50})
    assert answer.status_code == 200 and len(answer.json()["top_k"]) == labels
    assert abs(sum(distribution(answer.json()).values()) - 1) < 1e-3  # every intent: the probabilities sum to 1


def test_request_id_header_is_echoed_and_generated_otherwise(client):
    echoed = client.post("/predict", json={"text": "refund please"}, headers={"X-Request-ID": "req-42"})
    assert echoed.json()["request_id"] == echoed.headers["x-request-id"] == "req-42"
    answers = [client.post("/predict", json={"text": "refund please"}) for _ in range(2)]
    first, second = (answer.json()["request_id"] for answer in answers)
    assert first and second and first != second and [a.headers["x-request-id"] for a in answers] == [first, second]
    unusable = client.post("/predict", json={"text": "refund please"}, headers={"X-Request-ID": "x" * 500})
    assert unusable.json()["request_id"] == unusable.headers["x-request-id"] and len(unusable.json()["request_id"]) == 32
    refused = client.post("/predict", json={"text": ""}, headers={"X-Request-ID": "bad-input-1"})
    assert refused.status_code == 422 and refused.headers["x-request-id"] == "bad-input-1"  # errors carry it too
    batch = client.post("/predict/batch", json={"texts": ["a b", "c d"]}, headers={"X-Request-ID": "batch-7"}).json()
    assert batch["request_id"] == "batch-7" and {p["request_id"] for p in batch["predictions"]} == {"batch-7"}


def test_the_same_text_gets_the_same_intent(client):
    intents = {client.post("/predict", json={"text": "please cancel my order"}).json()["intent"] for _ in range(3)}
    assert len(intents) == 1


# --- /predict/batch -------------------------------------------------------------------------------------------------
def test_batch_preserves_order(client, production_version):
    "Results for [a, b, …] are those of /predict a, /predict b, … in that order, whatever the length-grouping inside."
    singles = {text: client.post("/predict", json={"text": text, "top_k": 50}).json() for text in CONFIDENT_POOL}

    def margin(prediction):
        confidences = sorted(distribution(prediction).values(), reverse=True)
        return confidences[0] - confidences[1]
    # dynamic INT8 quantises per batch, so probabilities move a little with batch-mates: compare intents only where clear
    clear = [text for text in CONFIDENT_POOL if margin(singles[text]) > 0.15]
    assert len({singles[text]["intent"] for text in clear}) >= 2, f"too few distinct clear intents to test order: {singles}"
    texts = [*clear, LONG_TEXT, *reversed(clear)]  # a long text between short ones: the server regroups by length
    answer = client.post("/predict/batch", json={"texts": texts, "top_k": 50})
    assert answer.status_code == 200
    body = answer.json()
    assert body["model_version"] == production_version and isinstance(body["request_id"], str)
    predictions = body["predictions"]
    assert len(predictions) == len(texts)
    for text, prediction in zip(texts, predictions):
        check_prediction(prediction, top_k=len(prediction["top_k"]), version=production_version)
        if text == LONG_TEXT:
            assert prediction["truncated"] is True
            continue
        assert prediction["truncated"] is False
        assert prediction["intent"] == singles[text]["intent"], text
        single = distribution(singles[text])
        assert all(abs(single[intent] - confidence) < 0.1 for intent, confidence in distribution(prediction).items()), text


def test_batch_of_two_matches_two_single_requests(client):
    a, b = "I cannot log in to my account", "please cancel my order"
    single = [client.post("/predict", json={"text": text}).json()["intent"] for text in (a, b)]
    assert single[0] != single[1]
    assert [p["intent"] for p in client.post("/predict/batch", json={"texts": [a, b]}).json()["predictions"]] == single
    assert [p["intent"] for p in client.post("/predict/batch", json={"texts": [b, a]}).json()["predictions"]] == single[::-1]


def test_batch_top_k_applies_to_every_prediction(client, production_version):
    body = client.post("/predict/batch", json={"texts": ["refund please", "cancel it", "hello"], "top_k": 2}).json()
    for prediction in body["predictions"]:
        check_prediction(prediction, top_k=2, version=production_version)


def test_batch_at_the_limit_is_accepted(client):
    answer = client.post("/predict/batch", json={"texts": [f"where is order {i}" for i in range(64)]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 64


# --- health, readiness, model, metrics, OpenAPI ---------------------------------------------------------------------
def test_health_and_ready(client, production_version):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert {part["state"] for part in health.json()["components"].values()} == {"running"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and {k: v for k, v in ready.json().items() if k not in ("components", "int8_host_check")} == {"status": "ready", "model_version": production_version}


def test_model_describes_what_is_served(client, production_version):
    model = client.get("/model")
    assert model.status_code == 200
    body = model.json()
    assert body["name"] == MODEL and body["version"] == production_version and body["alias"] == "production"
    assert body["variant"].endswith(".onnx") and body["provider"] == "CPUExecutionProvider"
    assert set(body["metrics"]) == {"test_accuracy", "test_macro_f1", "int8_test_accuracy"}
    assert 0 <= body["metrics"]["test_accuracy"] <= 1
    assert body["labels"] >= 2 and body["max_length"] > 0 and body["temperature"] > 0
    assert body["last_reload"]["ok"] is True and body["last_reload"]["version"] == production_version
    assert body["failed_version"] is None


def test_metrics_in_prometheus_format(client, production_version):
    assert client.post("/predict", json={"text": "refund please"}).status_code == 200
    assert client.post("/predict", json={"text": ""}).status_code == 422
    assert client.post("/explain", json={"text": ""}).status_code == 422
    families = scrape(client)
    requests = {(s.labels["handler"], s.labels["code"]): s.value for s in families["ainative_http_requests"] if s.name.endswith("_total")}
    assert requests[("/predict", "200")] >= 1 and requests[("/predict", "422")] >= 1
    assert requests[("/explain", "422")] >= 1  # /explain is its own handler, not folded into another
    methods = {s.labels["method"] for s in families["ainative_http_requests"] if s.labels["handler"] == "/predict"}
    assert "POST" in methods and methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    latency = families["ainative_http_request_duration_seconds"]
    assert any(s.name.endswith("_bucket") and s.labels["handler"] == "/predict" for s in latency)
    assert any(s.name.endswith("_count") and s.labels["handler"] == "/predict" and s.value >= 2 for s in latency)
    assert any(s.name == "ainative_batch_size_count" and s.value >= 1 for s in families["ainative_batch_size"])
    assert [s.value for s in families["ainative_queue_depth"]] == [0]
    info = [s for s in families["ainative_model_info"]]
    assert len(info) == 1 and info[0].value == 1
    assert info[0].labels["version"] == production_version and info[0].labels["name"] == MODEL
    reloads = {s.labels["result"]: s.value for s in families["ainative_reloads"] if s.name.endswith("_total")}
    assert reloads == {"success": 1.0}  # the initial load


def test_unknown_paths_are_counted_under_one_label(client):
    "A scanner probing random paths must not create one time series per path."
    for path in ("/wp-admin", "/a/b/c", "/.env"):
        assert client.get(path).status_code == 404
    assert client.request("PROPFIND", "/predict").status_code == 405  # WebDAV: the parser knows it, the app does not
    samples = scrape(client)["ainative_http_requests"]
    endpoints = {s.labels["handler"] for s in samples}
    assert "other" in endpoints and not {"/wp-admin", "/a/b/c", "/.env"} & endpoints
    assert "PROPFIND" not in {s.labels["method"] for s in samples} and "other" in {s.labels["method"] for s in samples}


def test_openapi_lists_the_prediction_endpoints_with_their_schemas(client):
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    for path, request, response in (("/predict", "PredictRequest", "Prediction"),
                                    ("/predict/batch", "BatchRequest", "BatchPrediction")):
        operation = document["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"] == f"#/components/schemas/{request}"
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == f"#/components/schemas/{response}"
    schemas = document["components"]["schemas"]
    assert schemas["PredictRequest"]["required"] == ["text"] and schemas["PredictRequest"]["additionalProperties"] is False
    assert schemas["BatchRequest"]["required"] == ["texts"] and schemas["BatchRequest"]["properties"]["texts"]["type"] == "array"
    assert {"intent", "confidence", "top_k", "model_version", "request_id"} <= set(schemas["Prediction"]["properties"])
    assert {"/health", "/ready", "/model", "/metrics"} <= set(document["paths"])


def test_docs_page_is_served(client):
    assert client.get("/docs").status_code == 200


# --- admin without a token ------------------------------------------------------------------------------------------
def test_admin_is_off_without_a_token(client):
    for headers in ({}, {"Authorization": "Bearer anything"}):
        answer = client.post("/admin/reload", headers=headers)
        assert answer.status_code == 404 and answer.json()["error"] == "admin_disabled"
        assert "AINATIVE_ADMIN_TOKEN" in answer.json()["message"]
