"""The admin endpoint over real HTTP: off without AINATIVE_ADMIN_TOKEN (404, see test_http_endpoints), bearer-only with it."""
from __future__ import annotations

import pytest

from live_server import ADMIN_TOKEN


@pytest.fixture(scope="module")
def server(start_server, demo_registry_dir):
    return start_server(demo_registry_dir, env={"AINATIVE_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture(scope="module")
def client(server):
    with server.client() as client:
        yield client


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong-token", f"Bearer {ADMIN_TOKEN}x",
                                           f"Bearer {ADMIN_TOKEN[:-1]}", ADMIN_TOKEN, f"Basic {ADMIN_TOKEN}",
                                           f"Token {ADMIN_TOKEN}", f"Bearer  {ADMIN_TOKEN}"])
def test_without_the_right_bearer_token_admin_is_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = client.post("/admin/reload", headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized" and "token" in answer.json()["message"]
    assert ADMIN_TOKEN not in answer.text  # the answer never leaks the token


def test_with_the_right_bearer_token_admin_reloads(client, production_version):
    answer = client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] is True and result["version"] == production_version and result["previous"] == production_version
    assert result["seconds"] >= 0 and result["at"]
    model = client.get("/model").json()
    assert model["version"] == production_version and model["last_reload"]["ok"] is True
    assert client.post("/predict", json={"text": "refund please"}).json()["model_version"] == production_version


def test_the_token_comes_from_the_environment_not_the_request(client):
    "Query strings and other headers carry no authority."
    assert client.post(f"/admin/reload?token={ADMIN_TOKEN}").status_code == 401
    assert client.post("/admin/reload", headers={"X-Admin-Token": ADMIN_TOKEN}).status_code == 401
