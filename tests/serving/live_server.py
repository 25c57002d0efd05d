"""`ainative serve` as a real process on loopback, and what the HTTP tests share: constants, metrics scraping, polling."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

AINATIVE = str(Path(sys.executable).parent / "ainative")
MODEL = "intent-classifier"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60  # start-up imports onnxruntime and verifies ~115 MB of files, on a shared 2-core machine
ADMIN_TOKEN = "test-admin-token-1234"


def copy_demo(demo_folder: Path, target: Path) -> Path:
    """A private, writable copy of the demo folder (registry and run) at `target`, for a module that registers and promotes;
    without the request log that servers of other modules wrote beside the registry (each copy starts with an empty one)."""
    shutil.copytree(demo_folder, target, copy_function=shutil.copyfile,  # contents only: read-only modes are not needed
                    ignore=shutil.ignore_patterns("monitor.sqlite*"))
    return target


def free_port() -> int:
    "A TCP port on loopback that nothing listens on now."
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    "Poll `condition` until it returns something truthy (returned), or fail after `timeout` s saying `what` did not happen."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value: return value
        time.sleep(interval)
    pytest.fail(f"{what} did not happen within {timeout} s")


def scrape(client: httpx.Client) -> dict[str, list]:
    "The server's /metrics, parsed: family name (without _total) -> its samples."
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def reload_counts(client: httpx.Client) -> dict[str, float]:
    "ainative_reloads_total by result, e.g. {'success': 2.0, 'failure': 1.0}."
    return {s.labels["result"]: s.value for s in scrape(client).get("ainative_reloads", []) if s.name.endswith("_total")}


class ServerProcess:
    "`ainative serve` in a subprocess on loopback: started, waited on until ready, stopped (SIGTERM, then kill)."

    def __init__(self, registry_dir: Path, log_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.stderr_path = log_dir / f"serve-{self.port}.stderr"
        # keep the session's isolated folders (AINATIVE_*_DIR), drop any other server setting of the outer environment
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AINATIVE_") or k.endswith("_DIR")}
        environment.update({"AINATIVE_DEVICE": "cpu", "AINATIVE_RELOAD_INTERVAL_S": "0.2", **(env or {})})
        self.env = environment
        self.command = [AINATIVE, "serve", "--host", HOST, "--port", str(self.port), "--registry-dir", str(registry_dir), *args]
        self.process: subprocess.Popen | None = None
        self._stderr = None

    def start(self) -> ServerProcess:
        self._stderr = open(self.stderr_path, "wb")  # a file, not a pipe: a full pipe would block the server
        self.process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> ServerProcess:
        "Poll /ready until it answers 200; fail with the server's stderr if it exits or is not ready in time."
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"ainative serve exited with {self.process.returncode} before it was ready:\n{self.stderr()[-4000:]}")
            try:
                answer = httpx.get(f"{self.url}/ready", timeout=2)
                if answer.status_code == 200: return self
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"ainative serve was not ready within {timeout} s (last /ready: {last}):\n{self.stderr()[-4000:]}")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)

    def async_client(self, **kwargs) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(base_url=self.url, timeout=kwargs.pop("timeout", 30), limits=limits, **kwargs)

    def stop(self, timeout: float = 40) -> int | None:
        "SIGTERM, then SIGKILL if it has not exited within `timeout` s; the exit status (negative: ended by that signal)."
        if self.process is None: return None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a test may have paused it, and a stopped process does not act on SIGTERM
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._stderr is not None: self._stderr.close()
        return self.process.returncode
