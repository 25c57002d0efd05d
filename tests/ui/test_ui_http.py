"""The page's HTTP side on a real server, no browser needed: every UI answer carries the security headers, only the
shipped files are served, and the traffic series counts the server's real answers (or says the log is off)."""
from __future__ import annotations

import pytest

from ainative.ui import CONTENT_SECURITY_POLICY, ui_files, unsafe_markup
from live_server import wait_until

UI_PATHS = ["/ui", "/ui/watch", "/ui/api/labels", "/ui/api/traffic"] + [f"/ui/static/{name}" for name in ui_files()]


@pytest.mark.parametrize("path", UI_PATHS)
def test_every_ui_answer_carries_the_security_headers(ui_server, path):
    with ui_server.client() as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"


def test_the_root_leads_to_the_page_and_head_works(ui_server):
    with ui_server.client() as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui"
        assert client.get("/", follow_redirects=True).url.path == "/ui"
        head = client.head("/ui/watch")
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/html") and head.content == b""


@pytest.mark.parametrize("path", ["/ui/static/settings.ini", "/ui/static/..%2F..%2Fserving.py", "/ui/static/%2E%2E",
                                  "/ui/static/../../ui.py", "/ui/static/index.htm"])
def test_only_the_shipped_files_are_served(ui_server, path):
    with ui_server.client() as client:
        answer = client.get(path)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert "def " not in answer.text


def test_the_shipped_files_have_no_inline_code_nor_html_sinks():
    assert unsafe_markup(ui_files()) == []


def test_the_traffic_series_counts_the_real_answers(ui_server):
    with ui_server.client() as client:
        before = client.get("/ui/api/traffic").json()["answers"]
        for text in ("where is my parcel?", "refund please", "I cannot log in"):
            assert client.post("/predict", json={"text": text}).status_code == 200
        assert client.post("/predict/batch", json={"texts": ["a", "b"]}).status_code == 200
        series = wait_until(lambda: (lambda s: s if s["answers"] >= before + 5 else None)(client.get("/ui/api/traffic").json()),
                            10, "five more answers in the series")
        assert client.get("/ui/api/traffic?minutes=0").status_code == 422
        assert client.get("/ui/api/traffic?minutes=abc").json()["error"] == "invalid_request"
    assert series["answers"] == before + 5 and len(series["minutes"]) == 60
    assert series["minutes"][-1]["answers"] >= 5 and series["minutes"][-1]["latency_p95_ms"] > 0


def test_the_labels_are_the_served_models(ui_server):
    with ui_server.client() as client:
        labels = client.get("/ui/api/labels").json()
        described = client.get("/model").json()
        top = client.post("/predict", json={"text": "hello", "top_k": 50}).json()["top_k"]
    assert labels["version"] == described["version"] and len(labels["labels"]) == described["labels"]
    assert set(labels["labels"]) == {alternative["intent"] for alternative in top}


def test_without_a_request_log_the_series_says_so(start_server, ui_folder):
    server = start_server(ui_folder / "registry", env={"AINATIVE_REQUEST_LOG": "false"})
    with server.client() as client:
        answer = client.get("/ui/api/traffic")
        page = client.get("/ui/watch")
    assert answer.status_code == 404 and answer.json()["error"] == "monitoring_disabled"
    assert page.status_code == 200
