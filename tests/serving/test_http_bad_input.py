"""Bad requests over real HTTP: each gets a 4xx with a JSON message that names the problem, never a 500."""
from __future__ import annotations

import json

import pytest

MAX_BODY_BYTES = 262_144  # ServingConfig.max_body_bytes
MAX_BATCH_TEXTS = 64      # ServingConfig.max_batch_texts


@pytest.fixture(scope="module")
def client(default_server):
    with default_server.client() as client:
        yield client


def check_error(answer, status: int, error: str, *named: str):
    "`answer` is `status` with a JSON body {error, message}, its message naming each of `named`."
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body = answer.json()
    assert body["error"] == error and isinstance(body["message"], str) and body["message"], body
    for name in named:
        assert name in body["message"], f"{name!r} not in {body['message']!r}"
    return body


INVALID_FIELDS = [
    # (path, body, the field the message must name, words the message must contain)
    ("/predict", {"text": ""}, "text", "empty"),
    ("/predict", {"text": " \n\t "}, "text", "whitespace"),
    ("/predict", {"text": 5}, "text", "string"),
    ("/predict", {"text": None}, "text", "string"),
    ("/predict", {"text": ["where is my parcel?"]}, "text", "string"),
    ("/predict", {"text": True}, "text", "string"),
    ("/predict", {}, "text", "required"),
    ("/predict", {"txt": "hi"}, "text", "required"),
    ("/predict", {"text": "hi", "extra": 1}, "extra", "not permitted"),
    ("/predict", {"text": "hi", "top_k": 0}, "top_k", "greater than or equal to 1"),
    ("/predict", {"text": "hi", "top_k": -3}, "top_k", "greater than or equal to 1"),
    ("/predict", {"text": "hi", "top_k": 51}, "top_k", "less than or equal to 50"),
    ("/predict", {"text": "hi", "top_k": 2.5}, "top_k", "integer"),
    ("/predict", {"text": "hi", "top_k": "many"}, "top_k", "integer"),
    ("/predict/batch", {"texts": "abc"}, "texts", "list"),
    ("/predict/batch", {"texts": [1]}, "texts.0", "string"),
    ("/predict/batch", {"texts": ["fine", None]}, "texts.1", "string"),
    ("/predict/batch", {"texts": []}, "texts", "at least 1"),
    ("/predict/batch", {"texts": ["fine", "  "]}, "texts", "[1]"),
    ("/predict/batch", {}, "texts", "required"),
    ("/predict/batch", {"text": "hi"}, "texts", "required"),
    ("/predict/batch", {"texts": ["hi"], "extra": True}, "extra", "not permitted"),
    ("/predict/batch", {"texts": ["hi"], "top_k": 0}, "top_k", "greater than or equal to 1"),
]


@pytest.mark.parametrize("path, body, field, words", INVALID_FIELDS,
                         ids=[f"{path}-{json.dumps(body)[:40]}" for path, body, _, _ in INVALID_FIELDS])
def test_invalid_fields_are_422_naming_the_field(client, path, body, field, words):
    answer = client.post(path, json=body)
    problems = check_error(answer, 422, "invalid_request", field, words)["problems"]
    assert field in [problem["field"] for problem in problems]


@pytest.mark.parametrize("body", [b"[]", b'"where is my parcel?"', b"null", b"42"])
def test_a_body_that_is_not_an_object_is_422(client, body):
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    check_error(answer, 422, "invalid_request", "body")


def test_a_missing_body_is_422(client):
    check_error(client.post("/predict"), 422, "invalid_request", "body", "required")
    check_error(client.post("/predict/batch", content=b"", headers={"content-type": "application/json"}),
                422, "invalid_request", "body")


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("body", [b"{not json", b'{"text": "hi",}', b'{"text": "unterminated', b"{", b'{"text": "hi"} trailing'])
def test_invalid_json_is_400(client, path, body):
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    check_error(answer, 400, "invalid_json", "JSON")


def test_a_body_that_is_not_utf8_is_400_invalid_json(client):
    answer = client.post("/predict", content='{"text": "café"}'.encode("latin-1"), headers={"content-type": "application/json"})
    check_error(answer, 400, "invalid_json", "JSON")


def test_a_body_that_is_not_utf8_is_still_a_4xx(client):
    answer = client.post("/predict", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("application/json")


def test_a_batch_over_the_limit_is_413(client):
    answer = client.post("/predict/batch", json={"texts": ["refund please"] * (MAX_BATCH_TEXTS + 1)})
    check_error(answer, 413, "batch_too_large", str(MAX_BATCH_TEXTS + 1), str(MAX_BATCH_TEXTS))


@pytest.mark.parametrize("path, body", [("/predict", {"text": "x" * (MAX_BODY_BYTES + 10)}),
                                        ("/predict/batch", {"texts": ["y" * 30_000] * 10})])
def test_a_body_over_the_limit_is_413(client, path, body):
    answer = client.post(path, json=body)
    check_error(answer, 413, "payload_too_large", str(MAX_BODY_BYTES))


def chunks(total_bytes: int, size: int = 16_384):
    "A JSON body of about `total_bytes` as a generator, which httpx sends chunked, without Content-Length."
    yield b'{"text": "'
    for _ in range(total_bytes // size): yield b"refund me " * (size // 10)
    yield b'"}'


def test_a_small_chunked_body_is_served(client):
    answer = client.post("/predict", content=chunks(20_000), headers={"content-type": "application/json"})
    assert answer.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in answer.request.headers
    assert answer.status_code == 200 and answer.json()["truncated"] is True


def test_a_chunked_body_over_the_limit_is_413(client):
    answer = client.post("/predict", content=chunks(2 * MAX_BODY_BYTES), headers={"content-type": "application/json"})
    assert "content-length" not in answer.request.headers
    check_error(answer, 413, "payload_too_large", str(MAX_BODY_BYTES))


def test_a_chunked_body_over_the_limit_is_still_a_4xx(client):
    answer = client.post("/predict", content=chunks(2 * MAX_BODY_BYTES), headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500


def test_an_over_long_text_is_truncated_not_refused(client):
    text = " ".join(f"word{i}" for i in range(5_000))
    answer = client.post("/predict", json={"text": text})
    assert answer.status_code == 200 and answer.json()["truncated"] is True
    batch = client.post("/predict/batch", json={"texts": ["refund please", text]})
    assert batch.status_code == 200 and [p["truncated"] for p in batch.json()["predictions"]] == [False, True]


@pytest.mark.parametrize("text", ["\x00", "😀🙃", "\u200b", "ß" * 100, "<script>alert(1)</script>", "'; DROP TABLE users; --"])
def test_odd_but_valid_text_is_served(client, text):
    assert client.post("/predict", json={"text": text}).status_code == 200


@pytest.mark.parametrize("path, body", [("/predict", b'{"text": "refund \\ud800 please"}'),
                                        ("/predict/batch", b'{"texts": ["refund please", "\\udfff"]}')])
def test_a_lone_surrogate_is_422(client, path, body):
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    check_error(answer, 422, "invalid_request", "text")


@pytest.mark.parametrize("method, path", [("GET", "/predict"), ("PUT", "/predict"), ("GET", "/predict/batch"),
                                          ("POST", "/health"), ("POST", "/ready"), ("DELETE", "/model"),
                                          ("POST", "/metrics"), ("GET", "/admin/reload")])
def test_a_wrong_method_is_405(client, method, path):
    answer = client.request(method, path)
    assert answer.status_code == 405 and answer.headers["content-type"].startswith("application/json")
    assert "allow" in answer.headers and method not in answer.headers["allow"]
    assert answer.json()  # FastAPI's {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("path", ["/nope", "/predict/batch/extra", "/PREDICT", "/admin"])
def test_an_unknown_path_is_404(client, path):
    answer = client.post(path, json={"text": "hi"})
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/json")
    assert answer.json()

