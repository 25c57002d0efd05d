"""JupyterLab, as `make lab` starts it: a headless server on loopback behind a token runs a chapter through its REST
API (contents, sessions) and a kernel's websocket, cell by cell, as the Lab front end does, in this environment."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

websocket = pytest.importorskip("websocket", reason="websocket-client (a dev requirement) talks to the kernel")

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "00_core.ipynb"  # small (seconds), and full of asserts
SKIP_FLAGS = {"#| notest", "#| slow", "#| eval: false"}  # what nbdev_test skips, skipped here too


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    "A running `jupyter lab` and the calls the Lab front end makes to it."

    def __init__(self, port: int, token: str):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = "default") -> dict:
        headers = {"Content-Type": "application/json"}
        if token: headers["Authorization"] = f"token {self.token if token == 'default' else token}"
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(self.base + path, data, headers, method=method), timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else {}

    def channels(self, kernel_id: str):
        url = f"ws://127.0.0.1:{self.base.rsplit(':', 1)[1]}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        return websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "JupyterLab on nbs/ (as `make lab`), loopback only, with a random token; stopped after the module."
    token, port = secrets.token_hex(16), free_port()
    log = (tmp_path_factory.mktemp("lab") / "lab.log").open("w")
    jupyter = Path(sys.executable).parent / "jupyter"
    server = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--allow-root", f"--ServerApp.root_dir={ROOT / 'nbs'}",
                               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                               f"--IdentityProvider.token={token}"],
                              stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"})
    client = Lab(port, token)
    try:
        for _ in range(600):
            assert server.poll() is None, f"jupyter lab exited: {Path(log.name).read_text()[-3000:]}"
            try:
                client.request("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail(f"jupyter lab did not answer within 60 s: {Path(log.name).read_text()[-3000:]}")
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def execute(connection, code: str, timeout_s: float = 300) -> dict:
    "Run `code` over the kernel's websocket; the reply status and the outputs, as nbformat would store them."
    msg_id = uuid.uuid4().hex
    connection.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": uuid.uuid4().hex,
                   "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    outputs, reply, idle, deadline = [], None, False, time.monotonic() + timeout_s
    while reply is None or not idle:
        assert time.monotonic() < deadline, f"no answer within {timeout_s} s to: {code[:200]}"
        message = json.loads(connection.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id: continue
        kind, content = message["msg_type"], message["content"]
        if message["channel"] == "shell" and kind == "execute_reply": reply = content
        elif kind == "status": idle = content["execution_state"] == "idle"
        elif kind == "stream": outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
        elif kind in {"execute_result", "display_data"}: outputs.append({"output_type": kind, "data": content["data"]})
        elif kind == "error": outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"]})
    return {"status": reply["status"], "outputs": outputs}


@pytest.fixture(scope="module")
def kernel(lab):
    "A notebook session for the chapter, opened through the sessions API, and its kernel's websocket."
    session = lab.request("POST", "/api/sessions", {"path": CHAPTER, "type": "notebook", "name": CHAPTER,
                                                    "kernel": {"name": "python3"}})
    connection = lab.channels(session["kernel"]["id"])
    yield connection
    connection.close()
    lab.request("DELETE", f"/api/sessions/{session['id']}")


def test_the_server_wants_the_token(lab):
    with pytest.raises(urllib.error.HTTPError) as refused:
        lab.request("GET", "/api/contents", token=None)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError):
        lab.request("GET", "/api/contents", token="not-the-token")


def test_kernel_is_this_environment(kernel):
    ran = execute(kernel, "import sys, ainative; print(sys.prefix); print(ainative.__file__)")
    assert ran["status"] == "ok"
    printed = "".join(output["text"] for output in ran["outputs"] if output["output_type"] == "stream").split()
    assert printed == [sys.prefix, str(ROOT / "ainative" / "__init__.py")]


def test_a_failing_cell_is_reported(kernel):
    ran = execute(kernel, "assert 1 + 1 == 3, 'arithmetic'")
    assert ran["status"] == "error"
    assert [(o["ename"], o["evalue"]) for o in ran["outputs"] if o["output_type"] == "error"] == [("AssertionError", "arithmetic")]


def test_chapter_runs_cell_by_cell(lab, kernel):
    "Every code cell of the chapter (what nbdev_test runs) succeeds through the server, and shows its outputs."
    notebook = lab.request("GET", f"/api/contents/{CHAPTER}?content=1&type=notebook")["content"]
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"
             and not any(flag in cell["source"] for flag in SKIP_FLAGS)]
    assert len(cells) >= 10, "the chapter lost its code"
    shown = 0
    for number, cell in enumerate(cells):
        ran = execute(kernel, cell["source"])
        errors = [f"{o['ename']}: {o['evalue']}" for o in ran["outputs"] if o["output_type"] == "error"]
        assert ran["status"] == "ok" and not errors, f"code cell {number} of {CHAPTER} failed: {errors}\n{cell['source'][:500]}"
        shown += sum(o["output_type"] in {"execute_result", "display_data"} for o in ran["outputs"])
    assert shown > 0, "no cell displayed anything: the outputs did not come back over the websocket"
